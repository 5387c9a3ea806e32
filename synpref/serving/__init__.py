"""Serving reward models over HTTP with Ray Serve (jobs/serve_rm.py builds the application).

- scorer.py      RewardScorer: the one forward path (rm_format text -> ids -> last-token reward)
- vllm_scorer.py VllmScorer: the same token ids -> rewards through a vLLM async engine (backend=vllm)
- protocol.py    request / response shapes: native, vLLM /classify and /pooling, OpenRLHF /get_reward
- replica.py     RewardModel deployment: one model; @serve.batch (transformers) or vLLM's own batching
- ingress.py     RewardModelIngress: FastAPI routes, auth, validation, formatting, routing by model
- app.py         build_app(cfg): binds one RewardModel per model behind the ingress
- settings.py    conf/serve_rm.yaml outside Hydra (Serve's app builder args), config checks
- client.py      RewardClient: batched, concurrent HTTP scoring with retries (jobs/evaluate.py)
"""
