"""Serving reward models over HTTP with Ray Serve (jobs/serve_rm.py builds the application).

- api.py         request / response shapes: native /v1/reward and /v1/compare, OpenRLHF /get_reward
- api_vllm.py    vLLM's shapes: /classify, /pooling, /score, /rerank, /tokenize
- errors.py      one JSON error shape for every error, unknown routes and wrong methods included
- inputs.py      body -> token ids: byte limit, UTF-8, chat template, special tokens, truncation
- replica.py     ModelHost (one model: @serve.batch on transformers, or vLLM's own batching) and the
                 RewardModel deployment around it
- ingress.py     RewardModelIngress: FastAPI routes, auth, routing by model name or alias
- app.py         build_app(cfg): the ingress, with a RewardModel per model or the models inside it
The inference core the replicas run, synpref.rm.scorer and synpref.rm.vllm_scorer, is shared with
scoring and evaluation.
- settings.py    conf/serve_rm.yaml outside Hydra (Serve's app builder args), config checks
- client.py      RewardClient: batched, concurrent HTTP scoring with retries (jobs/evaluate.py)
"""
