"""The HTTP ingress: bearer token, request validation, formatting and tokenizing, routing by model.

Every route checks the token first, then parses the body itself (so a malformed body gets a 400
that says so, not a framework 422), turns the request into token ids (native items through
synpref.rm.format.rm_text; vLLM / OpenRLHF texts as the client formatted them, encoded like vLLM
does), refuses what cannot be scored, and sends the ids in chunks to the model's replica
(synpref.serving.replica), which batches the chunks of concurrent requests.
Shapes: synpref.serving.api.
"""

from __future__ import annotations

import asyncio
import json
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from ray import serve
from ray.serve.exceptions import BackPressureError

from synpref.rm.weights import resolve_model
from synpref.rm.format import encode, rm_text
from synpref.serving import api as p
from synpref.rm.scorer import load_tokenizer

api = FastAPI(title="synpref reward models")


@api.exception_handler(p.ApiError)
async def _api_error(request: Request, error: p.ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def parse_body(request: Request, model_cls):
    raw = await request.body()
    if not raw:
        raise p.ApiError(400, "empty request body: send a JSON object")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise p.ApiError(400, f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise p.ApiError(400, f"the body must be a JSON object, got {type(data).__name__}")
    try:
        return model_cls.model_validate(data)
    except ValidationError as error:
        raise p.validation_error(error) from None


@serve.deployment
@serve.ingress(api)
class RewardModelIngress:
    def __init__(self, models: dict[str, dict], replicas: dict, *, auth_token: str | None = None,
                 max_items_per_request: int = 4096, chunk_size: int = 32):
        """models: served name -> {"path", "max_length"}; replicas: served name -> RewardModel handle."""
        from transformers import AutoConfig

        self.models = models
        self.replicas = replicas
        self.auth_token = auth_token
        self.max_items = max_items_per_request
        self.chunk_size = chunk_size
        self.tokenizers, self.labels = {}, {}
        for name, spec in models.items():
            path = resolve_model(spec["path"])
            self.tokenizers[name] = load_tokenizer(path)
            # vLLM answers /classify with the config's label for the winning class (index 0 here)
            self.labels[name] = (AutoConfig.from_pretrained(path).id2label or {}).get(0)

    # --- the steps every route shares ----------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        if self.auth_token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise p.ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(token.strip().encode(), self.auth_token.encode()):
            raise p.ApiError(403, "the bearer token is not valid for this server")

    def _model(self, name: str | None) -> str:
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models))
            raise p.ApiError(400, f"this server hosts several models, say which: model one of {list(self.models)}",
                             param="model")
        if name not in self.models:
            raise p.ApiError(404, f"the model {name!r} is not served here; served: {list(self.models)}",
                             param="model")
        return name

    def _check_count(self, n: int, what: str) -> None:
        if n == 0:
            raise p.ApiError(400, f"{what} is empty: send at least one", param=what)
        if n > self.max_items:
            raise p.ApiError(413, f"{n} sequences in one request; the limit is {self.max_items}: split the request",
                             param=what)

    def _encode(self, name: str, texts: list[str], what: str, *, add_special_tokens: bool = True,
                truncate: bool = False) -> tuple[list[list[int]], list[bool]]:
        """Token ids per text and which were left-truncated (only with truncate; else too long is a 400)."""
        tokenizer, max_length = self.tokenizers[name], self.models[name]["max_length"]
        if add_special_tokens:
            ids, too_long = encode(tokenizer, texts, max_length)
        else:  # vLLM's add_special_tokens=false: the client's text already holds them
            ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
            too_long = [len(x) > max_length for x in ids]
        over = [i for i, flag in enumerate(too_long) if flag]
        if over and not truncate:
            raise p.ApiError(400, f"{len(over)} of {len(texts)} {what} are longer than max_length={max_length} tokens "
                             f"(first: {what}[{over[0]}]); shorten them or serve with a larger max_length",
                             param=what)
        empty = [i for i, x in enumerate(ids) if not x]
        if empty:
            raise p.ApiError(400, f"{what}[{empty[0]}] is empty (no tokens to score)", param=what)
        return ids, too_long

    async def _score(self, name: str, ids: list[list[int]]) -> list[float]:
        replica = self.replicas[name]
        chunks = [ids[i:i + self.chunk_size] for i in range(0, len(ids), self.chunk_size)]
        try:
            results = await asyncio.gather(*(replica.score.remote(chunk) for chunk in chunks))
        except BackPressureError:
            raise p.ApiError(503, f"model {name!r} is overloaded (its queue is full): retry later") from None
        return [reward for chunk in results for reward in chunk]

    async def _texts_to_scores(self, name: str, texts: list[str], what: str, **encode_options):
        """(rewards, token counts, truncated flags) of already formatted texts."""
        ids, truncated = await asyncio.to_thread(self._encode, name, texts, what, **encode_options)
        return await self._score(name, ids), [len(x) for x in ids], truncated

    def _formatted(self, name: str, items: list[tuple[list, str]]) -> list[str]:
        tokenizer = self.tokenizers[name]
        return [rm_text(tokenizer, [m.model_dump() for m in conversation], response)
                for conversation, response in items]

    # --- routes --------------------------------------------------------------------------------

    @api.get("/health")
    async def health(self, request: Request) -> dict:
        self._authorize(request)
        return {"status": "ok", "models": list(self.models)}

    @api.get("/v1/models")
    async def list_models(self, request: Request) -> dict:
        self._authorize(request)
        return p.models_response(self.models)

    @api.post("/v1/score")
    async def score(self, request: Request) -> dict:
        self._authorize(request)
        body = await parse_body(request, p.ScoreRequest)
        name = self._model(body.model)
        self._check_count(len(body.items), "items")
        texts = await asyncio.to_thread(self._formatted, name, [(i.conversation, i.response) for i in body.items])
        scores, num_tokens, truncated = await self._texts_to_scores(name, texts, "items", truncate=body.truncate)
        return p.score_response(name, scores, num_tokens, truncated)

    @api.post("/v1/compare")
    async def compare(self, request: Request) -> dict:
        self._authorize(request)
        body = await parse_body(request, p.CompareRequest)
        name = self._model(body.model)
        self._check_count(2 * len(body.pairs), "pairs")
        items = [(q.conversation, q.chosen) for q in body.pairs] + [(q.conversation, q.rejected) for q in body.pairs]
        texts = await asyncio.to_thread(self._formatted, name, items)
        scores, _, _ = await self._texts_to_scores(name, texts, "pairs")
        n = len(body.pairs)
        return p.compare_response(name, scores[:n], scores[n:])

    async def _vllm_inputs(self, request: Request):
        body = await parse_body(request, p.VllmRequest)
        name = self._model(body.model)
        if (body.input is None) == (body.messages is None):
            raise p.ApiError(400, "send exactly one of input (a string or a list of strings) or messages",
                             param="input")
        if body.messages is not None:
            # the chat form: the last message is the assistant response to score
            if len(body.messages) < 2 or body.messages[-1].role != "assistant":
                raise p.ApiError(400, "messages must end with the assistant response to score, after a user turn",
                                 param="messages")
            texts = self._formatted(name, [(body.messages[:-1], body.messages[-1].content)])
        else:
            texts = [body.input] if isinstance(body.input, str) else list(body.input)
        self._check_count(len(texts), "input")
        if body.task not in (None, "classify"):
            raise p.ApiError(400, f"task={body.task!r} is not supported; a reward model serves task=classify",
                             param="task")
        scores, num_tokens, _ = await self._texts_to_scores(name, texts, "input",
                                                            add_special_tokens=body.add_special_tokens)
        return body, name, scores, num_tokens

    @api.post("/classify")
    async def classify(self, request: Request) -> dict:
        self._authorize(request)
        body, name, scores, num_tokens = await self._vllm_inputs(request)
        return p.classify_response(name, scores, num_tokens, activation=body.activation_on(), label=self.labels[name])

    @api.post("/pooling")
    async def pooling(self, request: Request) -> dict:
        self._authorize(request)
        body, name, scores, num_tokens = await self._vllm_inputs(request)
        return p.pooling_response(name, scores, num_tokens, activation=body.activation_on())

    @api.post("/get_reward")
    async def get_reward(self, request: Request) -> dict:
        self._authorize(request)
        body = await parse_body(request, p.GetRewardRequest)
        name = self._model(body.model)
        self._check_count(len(body.query), "query")
        scores, _, _ = await self._texts_to_scores(name, body.query, "query")
        return p.get_reward_response(scores)
