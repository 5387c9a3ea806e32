"""The HTTP ingress: auth, request parsing, text -> token ids, routing by model, one error shape.

Every route but /health checks the bearer token (when the server has one), parses the body itself
(synpref.serving.inputs: byte limit, UTF-8, JSON object, valid Unicode), turns the request into
token ids the way its client expects, and sends them in chunks to the model's replica
(synpref.serving.replica), which batches the chunks of concurrent requests. A request that names
no model gets the default one; a model answers to its name and its aliases (verl sends its model
path). Shapes: synpref.serving.api (native, OpenRLHF) and synpref.serving.api_vllm (vLLM);
errors: synpref.serving.errors.
"""

from __future__ import annotations

import asyncio
import secrets

from fastapi import FastAPI, Request
from pydantic import ValidationError
from ray import serve
from ray.serve.exceptions import BackPressureError

from synpref.rm.format import encode, rm_text
from synpref.rm.scorer import load_tokenizer
from synpref.rm.weights import resolve_model
from synpref.serving import api, api_vllm, errors
from synpref.serving.errors import ApiError
from synpref.serving.inputs import check_ids, chat_text, encode_texts, fit, parse_json
from synpref.serving.replica import ModelHost

app = FastAPI(title="synpref reward models")
errors.install(app)


@serve.deployment
@serve.ingress(app)
class RewardModelIngress:
    def __init__(self, models: dict[str, dict], replicas: dict | None, *, auth_token: str | None = None,
                 max_items_per_request: int = 4096, max_request_bytes: int = 8 << 20, chunk_size: int = 32,
                 default_model: str | None = None, hosts: dict[str, dict] | None = None):
        """models: served name -> {"path", "max_length", "aliases"}; replicas: served name -> RewardModel
        handle (layout separate), or None and `hosts`: served name -> ModelHost options (colocated)."""
        from transformers import AutoConfig

        self.models, self.replicas = models, replicas
        self.hosts = {name: ModelHost(models[name]["path"], **options) for name, options in (hosts or {}).items()}
        self.auth_token = auth_token
        self.max_items, self.max_bytes, self.chunk_size = max_items_per_request, max_request_bytes, chunk_size
        self.default = default_model or next(iter(models))
        self.names = {alias: name for name, spec in models.items() for alias in [name, *spec.get("aliases", [])]}
        self.tokenizers, self.labels = {}, {}
        for name, spec in models.items():
            path = resolve_model(spec["path"])
            self.tokenizers[name] = load_tokenizer(path)
            # vLLM answers /classify with the config's label for the winning class (index 0 here)
            self.labels[name] = (AutoConfig.from_pretrained(path).id2label or {}).get(0)

    def __del__(self):
        for host in getattr(self, "hosts", {}).values():
            host.shutdown()

    # --- the steps every route shares ----------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        if self.auth_token is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(token.strip().encode(), self.auth_token.encode()):
            raise ApiError(401, "the bearer token is not valid for this server")

    async def _request(self, request: Request, shape):
        """(the validated body, the raw dict) after the token, the byte limit and the JSON checks."""
        self._authorize(request)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise ApiError(413, f"the request body is {length} bytes; this server takes at most {self.max_bytes}: "
                           "split the request")
        raw = parse_json(await request.body(), self.max_bytes)
        try:
            return shape.model_validate(raw), raw
        except ValidationError as error:
            raise errors.validation_error(error) from None

    def _model(self, name: str | None) -> str:
        if name is None:
            return self.default
        if name not in self.names:
            raise ApiError(404, f"The model `{name}` does not exist: served here {list(self.models)}", param="model")
        return self.names[name]

    def _check_count(self, n: int, what: str) -> None:
        if n == 0:
            raise ApiError(400, f"{what} is empty: send at least one", param=what)
        if n > self.max_items:
            raise ApiError(413, f"{n} sequences in one request; the limit is {self.max_items}: split the request",
                           param=what)

    async def _score(self, name: str, ids: list[list[int]]) -> list[float]:
        chunks = [ids[i:i + self.chunk_size] for i in range(0, len(ids), self.chunk_size)]
        if self.hosts:  # colocated: the model is here
            results = await asyncio.gather(*(self.hosts[name].score(chunk) for chunk in chunks))
            return [reward for chunk in results for reward in chunk]
        replica = self.replicas[name]
        try:
            results = await asyncio.gather(*(replica.score.remote(chunk) for chunk in chunks))
        except BackPressureError:
            raise ApiError(503, f"model {name!r} is overloaded (its queue is full): retry later") from None
        return [reward for chunk in results for reward in chunk]

    def _rm_ids(self, name: str, items: list[tuple[list[dict], str]], what: str, *, truncate: bool):
        """synpref's formatting (synpref.rm.format, as training): left-truncated when asked, else a 400."""
        tokenizer, max_length = self.tokenizers[name], self.models[name]["max_length"]
        ids, too_long = encode(tokenizer, [rm_text(tokenizer, c, r) for c, r in items], max_length)
        if any(too_long) and not truncate:
            first = too_long.index(True)
            raise ApiError(400, f"{sum(too_long)} of {len(items)} {what} are longer than max_length={max_length} "
                           f"tokens (first: {what}[{first}]); shorten them or send truncate=true", param=what)
        check_ids(ids, len(tokenizer), what)
        return ids, too_long

    def _pooling_ids(self, name: str, body: api_vllm.PoolingRequest) -> list[list[int]]:
        tokenizer = self.tokenizers[name]
        if body.messages is not None:
            messages = [m.for_template(i) for i, m in enumerate(body.messages)]
            self._check_count(len(messages), "messages")
            text = chat_text(tokenizer, messages, add_generation_prompt=body.add_generation_prompt,
                             continue_final_message=body.continue_final_message,
                             chat_template_kwargs=body.chat_template_kwargs)
            ids = encode_texts(tokenizer, [text], add_special_tokens=bool(body.add_special_tokens))
        elif isinstance(body.input, str):
            ids = encode_texts(tokenizer, [body.input], add_special_tokens=body.add_special_tokens is not False)
        elif body.input and isinstance(body.input[0], int):
            ids = [list(body.input)]
        elif body.input and isinstance(body.input[0], list):
            ids = [list(x) for x in body.input]
        else:
            self._check_count(len(body.input), "input")
            ids = encode_texts(tokenizer, list(body.input), add_special_tokens=body.add_special_tokens is not False)
        self._check_count(len(ids), "input")
        check_ids(ids, len(tokenizer), "input")
        ids, _ = fit(ids, max_length=self.models[name]["max_length"], what="input",
                     truncate_prompt_tokens=body.truncate_prompt_tokens, side=body.truncation_side or "right")
        return ids

    async def _pooling(self, request: Request, route: str):
        body, raw = await self._request(request, api_vllm.PoolingRequest)
        body.check(route, raw)
        name = self._model(body.model)
        ids = await asyncio.to_thread(self._pooling_ids, name, body)
        request_id = body.request_id or request.headers.get("x-request-id")
        return body, name, await self._score(name, ids), [len(x) for x in ids], request_id

    # --- routes --------------------------------------------------------------------------------

    @app.get("/health")
    async def health(self) -> dict:
        """Public, as vLLM's: a load balancer or a trainer checks it without the token."""
        return {"status": "ok", "models": list(self.models)}

    @app.get("/v1/models")
    async def list_models(self, request: Request) -> dict:
        self._authorize(request)
        return api.models_response(self.models)

    @app.post("/v1/reward")
    async def reward(self, request: Request) -> dict:
        body, _ = await self._request(request, api.RewardRequest)
        name = self._model(body.model)
        self._check_count(len(body.items), "items")
        items = [([m.model_dump() for m in i.conversation], i.response) for i in body.items]
        ids, truncated = await asyncio.to_thread(self._rm_ids, name, items, "items", truncate=body.truncate)
        return api.reward_response(name, await self._score(name, ids), [len(x) for x in ids], truncated)

    @app.post("/v1/compare")
    async def compare(self, request: Request) -> dict:
        body, _ = await self._request(request, api.CompareRequest)
        name = self._model(body.model)
        self._check_count(2 * len(body.pairs), "pairs")
        conversations = [[m.model_dump() for m in p.conversation] for p in body.pairs]
        items = [(c, p.chosen) for c, p in zip(conversations, body.pairs)]
        items += [(c, p.rejected) for c, p in zip(conversations, body.pairs)]
        ids, _ = await asyncio.to_thread(self._rm_ids, name, items, "pairs", truncate=False)
        scores, n = await self._score(name, ids), len(body.pairs)
        return api.compare_response(name, scores[:n], scores[n:])

    @app.post("/classify")
    async def classify(self, request: Request) -> dict:
        body, name, scores, num_tokens, request_id = await self._pooling(request, "classify")
        return api_vllm.classify_response(name, scores, num_tokens, activation=body.activation_on(),
                                          label=self.labels[name], request_id=request_id)

    @app.post("/pooling")
    async def pooling(self, request: Request) -> dict:
        body, name, scores, num_tokens, request_id = await self._pooling(request, "pooling")
        return api_vllm.pooling_response(name, scores, num_tokens, activation=body.activation_on(),
                                         encoding_format=body.encoding_format, request_id=request_id)

    async def _pair_scores(self, name: str, pairs: list[tuple[str, str]], body) -> tuple[list[float], list[int]]:
        """A reward model's Score API: each (query, document) as the chat [user: query, assistant: document]."""
        self._check_count(len(pairs), "documents")
        tokenizer = self.tokenizers[name]

        def ids_of() -> list[list[int]]:
            texts = [rm_text(tokenizer, [{"role": "user", "content": q}], d) for q, d in pairs]
            ids = encode_texts(tokenizer, texts, add_special_tokens=True)
            check_ids(ids, len(tokenizer), "documents")
            return fit(ids, max_length=self.models[name]["max_length"], what="documents",
                       truncate_prompt_tokens=getattr(body, "truncate_prompt_tokens", None),
                       side=getattr(body, "truncation_side", None) or "right")[0]

        ids = await asyncio.to_thread(ids_of)
        return await self._score(name, ids), [len(x) for x in ids]

    @app.post("/score")
    @app.post("/v1/score")
    async def score(self, request: Request) -> dict:
        body, _ = await self._request(request, api_vllm.ScoreRequest)
        name = self._model(body.model)
        scores, num_tokens = await self._pair_scores(name, body.pairs(), body)
        activation = body.use_activation is not False
        return api_vllm.score_response(name, scores, num_tokens, activation=activation,
                                       request_id=body.request_id or request.headers.get("x-request-id"))

    @app.post("/rerank")
    @app.post("/v1/rerank")
    @app.post("/v2/rerank")
    async def rerank(self, request: Request) -> dict:
        body, _ = await self._request(request, api_vllm.RerankRequest)
        name = self._model(body.model)
        scores, num_tokens = await self._pair_scores(name, [(body.query, d) for d in body.documents], body)
        return api_vllm.rerank_response(name, body.documents, scores, num_tokens,
                                        activation=body.use_activation is not False, top_n=body.top_n,
                                        request_id=body.request_id or request.headers.get("x-request-id"))

    @app.post("/tokenize")
    async def tokenize(self, request: Request) -> dict:
        body, _ = await self._request(request, api_vllm.TokenizeRequest)
        name = self._model(body.model)
        tokenizer = self.tokenizers[name]
        if (body.prompt is None) == (body.messages is None):
            raise ApiError(400, "send exactly one of prompt or messages", param="prompt")
        if body.messages is not None:
            text = chat_text(tokenizer, [m.for_template(i) for i, m in enumerate(body.messages)],
                             add_generation_prompt=body.add_generation_prompt,
                             continue_final_message=body.continue_final_message)
            special = bool(body.add_special_tokens)
        else:
            text, special = body.prompt, body.add_special_tokens is not False
        ids = (await asyncio.to_thread(encode_texts, tokenizer, [text], add_special_tokens=special))[0]
        return api_vllm.tokenize_response(ids, self.models[name]["max_length"])

    @app.post("/get_reward")
    async def get_reward(self, request: Request) -> dict:
        body, _ = await self._request(request, api.GetRewardRequest)
        name = self._model(body.model)
        if not body.query:  # OpenRLHF's extra RM URLs get empty lists and must answer 200
            return api.get_reward_response([])
        self._check_count(len(body.query), "query")
        tokenizer = self.tokenizers[name]

        def ids_of(queries: list[str]) -> list[list[int]]:
            ids = encode_texts(tokenizer, queries, add_special_tokens=False)
            check_ids(ids, len(tokenizer), "query")
            # over-long queries are cut, as OpenRLHF's own server does, keeping their end (the reward's token)
            return fit(ids, max_length=self.models[name]["max_length"], what="query", truncate_prompt_tokens=-1,
                       side="left")[0]

        return api.get_reward_response(await self._score(name, await asyncio.to_thread(ids_of, body.query)))
