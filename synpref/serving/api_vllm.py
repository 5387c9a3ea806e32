"""vLLM's pooling routes, as vLLM 0.32 takes and answers them (vllm/entrypoints/pooling/*/protocol.py),
so vLLM's own clients, verl's and scripts written against `vllm serve --runner pooling` work unchanged.

POST /classify, /pooling   {"model", "input": str | [str] | [int] | [[int]]} or {"model", "messages": [...]}
                           (content a string or text parts, any role, a `name`), use_activation
                           (None: sigmoid, as vLLM's default for one label; false: the raw reward),
                           truncate_prompt_tokens (-1: max_length) and truncation_side (default
                           "right", vLLM's for pooling models), add_special_tokens (True for input,
                           False for messages: the chat template holds them), add_generation_prompt,
                           continue_final_message, chat_template_kwargs, request_id (or X-Request-Id),
                           /pooling's encoding_format float | base64.
POST /score, /v1/score     vLLM's Score API: queries + documents (or items, data_1/data_2, text_1/text_2),
                           1:1, 1:N or N:N. A reward model scores each (query, document) as the chat
                           [user: query, assistant: document] through its chat template.
POST /rerank, /v1/rerank   {"query", "documents", "top_n"?}: the documents by that score, best first.
POST /tokenize             {"model", "prompt"} or {"model", "messages"} -> {"count", "max_model_len", "tokens"}.
Refused as vLLM refuses them (400): `normalize` (removed in vLLM), `dimensions` on /pooling, a
`chat_template` from the request, add_generation_prompt with continue_final_message, a task other
than classify, a priority other than 0. `activation`, the older name verl still sends, is honoured
(vLLM 0.32 ignores it; verl means the raw reward). Other unknown fields are ignored, as vLLM does.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synpref.record.ops import sigmoid
from synpref.serving.errors import ApiError


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def for_template(self, index: int) -> dict:
        """{"role", "content"(, "name")} with text parts joined; any other part is a 400."""
        content = self.content
        if isinstance(content, list):
            others = [p.type for p in content if p.type != "text" or p.text is None]
            if others:
                raise ApiError(400, f"messages[{index}] holds {others[0]!r} content: a reward model here reads "
                               "text parts only", param=f"messages.{index}.content")
            content = "\n".join(p.text for p in content)
        message = {"role": self.role, "content": content or ""}
        if self.name is not None:
            message["name"] = self.name
        return message


class PoolingRequest(BaseModel):
    """/classify and /pooling, the completion form (input) or the chat form (messages)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]] | None = None
    messages: list[ChatMessage] | None = None
    use_activation: bool | None = None
    activation: bool | None = None
    add_special_tokens: bool | None = None
    truncate_prompt_tokens: int | None = Field(default=None, ge=-1)
    truncation_side: Literal["left", "right"] | None = None
    add_generation_prompt: bool = False
    continue_final_message: bool = False
    chat_template: str | None = None
    chat_template_kwargs: dict | None = None
    encoding_format: Literal["float", "base64", "bytes", "bytes_only"] = "float"
    embed_dtype: str = "float32"
    dimensions: int | None = None
    request_id: str | None = None
    priority: int = 0
    task: str | None = None

    def activation_on(self) -> bool:
        if self.use_activation is not None:
            return self.use_activation
        return True if self.activation is None else self.activation

    def check(self, route: str, raw: dict) -> None:
        """What vLLM refuses with a 400, and what this server cannot do."""
        if "normalize" in raw:
            raise ApiError(400, "Parameter `normalize` was removed; use `use_activation` instead.", param="normalize")
        if (self.input is None) == (self.messages is None):
            raise ApiError(400, "send exactly one of input (text, texts or token ids) or messages", param="input")
        if self.task not in (None, "classify"):
            raise ApiError(400, f"task={self.task!r} is not supported; a reward model serves task=classify",
                           param="task")
        if route == "pooling" and self.dimensions is not None:
            raise ApiError(400, "dimensions is currently not supported", param="dimensions")
        if self.chat_template is not None or (self.chat_template_kwargs or {}).get("chat_template") is not None:
            raise ApiError(400, "a chat template from the request is not accepted: the model's own is used",
                           param="chat_template")
        if self.add_generation_prompt and self.continue_final_message:
            raise ApiError(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
                           param="continue_final_message")
        if self.priority != 0:
            raise ApiError(400, "priority scheduling is not enabled on this server: send priority 0", param="priority")
        if self.encoding_format in ("bytes", "bytes_only") or self.embed_dtype != "float32":
            raise ApiError(400, "encoding_format float or base64 with embed_dtype float32 are served here",
                           param="encoding_format")


def response_id(kind: str, request_id: str | None) -> str:
    return f"{kind}-{request_id or uuid.uuid4().hex}"


def usage(num_tokens: list[int]) -> dict:
    total = sum(num_tokens)
    return {"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0,
            "prompt_tokens_details": None, "completion_tokens_details": None}


def classify_response(model: str, scores: list[float], num_tokens: list[int], *, activation: bool,
                      label: str | None, request_id: str | None) -> dict:
    data = [{"index": i, "label": label, "probs": [sigmoid(s) if activation else s], "num_classes": 1}
            for i, s in enumerate(scores)]
    return {"id": response_id("classify", request_id), "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": usage(num_tokens)}


def encoded(values: list[float], encoding_format: str):
    """float: the list; base64: the float32 little-endian bytes, base64-encoded (vLLM's encoding)."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return values


def pooling_response(model: str, scores: list[float], num_tokens: list[int], *, activation: bool,
                     encoding_format: str, request_id: str | None) -> dict:
    data = [{"index": i, "object": "pooling", "data": encoded([sigmoid(s) if activation else s], encoding_format)}
            for i, s in enumerate(scores)]
    return {"id": response_id("pool", request_id), "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": usage(num_tokens)}


class TokenizeRequest(BaseModel):
    """vLLM's POST /tokenize (its classification example takes token ids from it)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool | None = None
    add_generation_prompt: bool = False
    continue_final_message: bool = False


def tokenize_response(ids: list[int], max_length: int) -> dict:
    return {"count": len(ids), "max_model_len": max_length, "tokens": ids, "token_strs": None}


class ScoreRequest(BaseModel):
    """vLLM's Score API: the two sides under any of the names vLLM 0.32 takes."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    queries: str | list[str] | None = None
    documents: str | list[str] | None = None
    items: str | list[str] | None = None
    data_1: str | list[str] | None = None
    data_2: str | list[str] | None = None
    text_1: str | list[str] | None = None
    text_2: str | list[str] | None = None
    use_activation: bool | None = None
    truncate_prompt_tokens: int | None = Field(default=None, ge=-1)
    truncation_side: Literal["left", "right"] | None = None
    request_id: str | None = None

    def pairs(self) -> list[tuple[str, str]]:
        for left, right in ((self.queries, self.documents), (self.queries, self.items), (self.data_1, self.data_2),
                            (self.text_1, self.text_2)):
            if left is not None and right is not None:
                return score_pairs(left, right)
        raise ApiError(400, "send queries and documents (or data_1 and data_2, or text_1 and text_2)", param="queries")


def score_pairs(left, right) -> list[tuple[str, str]]:
    left = [left] if isinstance(left, str) else list(left)
    right = [right] if isinstance(right, str) else list(right)
    if not left or not right:
        raise ApiError(400, "queries and documents must not be empty", param="queries")
    if len(left) == 1:
        return [(left[0], r) for r in right]
    if len(left) != len(right):
        raise ApiError(400, "Input lengths must be either 1:1, 1:N or N:N", param="documents")
    return list(zip(left, right))


def score_response(model: str, scores: list[float], num_tokens: list[int], *, activation: bool,
                   request_id: str | None) -> dict:
    data = [{"index": i, "object": "score", "score": sigmoid(s) if activation else s} for i, s in enumerate(scores)]
    return {"id": response_id("score", request_id), "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": usage(num_tokens)}


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    query: str
    documents: list[str] = Field(min_length=1)
    top_n: int = Field(default=0, ge=0)
    use_activation: bool | None = None
    request_id: str | None = None


def rerank_response(model: str, documents: list[str], scores: list[float], num_tokens: list[int], *,
                    activation: bool, top_n: int, request_id: str | None) -> dict:
    results = [{"index": i, "document": {"text": d, "multi_modal": None},
                "relevance_score": sigmoid(s) if activation else s} for i, (d, s) in enumerate(zip(documents, scores))]
    results.sort(key=lambda r: -r["relevance_score"])
    if 0 < top_n < len(results):
        results = results[:top_n]
    return {"id": response_id("rerank", request_id), "model": model, "usage": usage(num_tokens), "results": results}
