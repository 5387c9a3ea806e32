"""HTTP request and response shapes of the reward-model server.

Three families, so that clients people already have work unchanged:

- native (synpref): POST /v1/score  {"model"?, "items": [{"conversation": [...], "response": str}]}
                    POST /v1/compare {"model"?, "pairs": [{"conversation": [...], "chosen", "rejected"}]}
  The server formats each item with the model's chat template (synpref.rm.format).
- vLLM 0.32:        POST /classify and POST /pooling {"model", "input": str | [str]} or {"model",
  "messages": [...]}; `use_activation` (vLLM) or `activation` (what verl sends; vLLM 0.32 itself
  ignores it) false returns the raw reward instead of its sigmoid.
- OpenRLHF:         POST /get_reward {"query": [str], "prompts"?, "labels"?} -> rewards, scores.
  Queries, like vLLM inputs, are texts the client already formatted.

Errors are vLLM's shape, {"error": {"message", "type", "param", "code"}}, with a 4xx code that says
whose fault it was.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

class ApiError(Exception):
    """An error answered to the client as JSON with an HTTP status."""

    TYPES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
             404: "NotFoundError", 413: "RequestTooLargeError", 503: "ServiceUnavailableError"}

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "Error"),
                          "param": self.param, "code": self.status}}


def validation_error(error: ValidationError) -> ApiError:
    """A pydantic error as one readable 400: each bad field with what was wrong with it."""
    problems = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "body"
        problems.append(f"{where}: {e['msg']}")
    first = ".".join(str(p) for p in error.errors()[0]["loc"]) or None
    return ApiError(400, "invalid request: " + "; ".join(problems), param=first)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


def _check_conversation(messages: list[Message]) -> list[Message]:
    if not messages:
        raise ValueError("a conversation needs at least one message")
    if messages[-1].role != "user":
        raise ValueError("a conversation must end with a user message (the response is scored after it)")
    return messages


Conversation = Annotated[list[Message], AfterValidator(_check_conversation)]


# --- native ----------------------------------------------------------------------------------


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: Conversation
    response: str


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    items: list[ScoreItem] = Field(min_length=1)
    # false: an item over max_length is a 400. true: keep its last max_length tokens (the end of the
    # response, where the reward is read), as training does, and flag it in "truncated".
    truncate: bool = False


class ComparePair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: Conversation
    chosen: str
    rejected: str


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    pairs: list[ComparePair] = Field(min_length=1)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def score_response(model: str, scores: list[float], num_tokens: list[int], truncated: list[bool]) -> dict:
    return {"object": "list", "model": model, "scores": scores, "num_tokens": num_tokens, "truncated": truncated}


def compare_response(model: str, chosen: list[float], rejected: list[float]) -> dict:
    data = []
    for i, (c, r) in enumerate(zip(chosen, rejected)):
        # p = sigmoid(r_w - r_l): the Bradley-Terry probability that the chosen response is better
        preferred = "chosen" if c > r else "rejected" if r > c else "tie"
        data.append({"index": i, "score_chosen": c, "score_rejected": r, "margin": c - r,
                     "p_chosen": sigmoid(c - r), "preferred": preferred})
    return {"object": "list", "model": model, "data": data}


# --- vLLM ------------------------------------------------------------------------------------


class VllmRequest(BaseModel):
    """/classify and /pooling. Unknown fields are ignored, as vLLM ignores them (clients send extras)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: str | list[str] | None = None
    messages: list[Message] | None = None
    use_activation: bool | None = None
    activation: bool | None = None  # the older vLLM name, still sent by verl
    add_special_tokens: bool = True
    task: str | None = None

    def activation_on(self) -> bool:
        if self.use_activation is not None:
            return self.use_activation
        return True if self.activation is None else self.activation


def vllm_usage(num_tokens: list[int]) -> dict:
    total = sum(num_tokens)
    return {"prompt_tokens": total, "total_tokens": total, "completion_tokens": 0,
            "prompt_tokens_details": None, "completion_tokens_details": None}


def classify_response(model: str, scores: list[float], num_tokens: list[int], *, activation: bool,
                      label: str | None) -> dict:
    data = [{"index": i, "label": label, "probs": [sigmoid(s) if activation else s], "num_classes": 1}
            for i, s in enumerate(scores)]
    return {"id": f"classify-{uuid.uuid4().hex[:16]}", "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": vllm_usage(num_tokens)}


def pooling_response(model: str, scores: list[float], num_tokens: list[int], *, activation: bool) -> dict:
    data = [{"index": i, "object": "pooling", "data": [sigmoid(s) if activation else s]}
            for i, s in enumerate(scores)]
    return {"id": f"pooling-{uuid.uuid4().hex[:16]}", "object": "list", "created": int(time.time()),
            "model": model, "data": data, "usage": vllm_usage(num_tokens)}


# --- OpenRLHF --------------------------------------------------------------------------------


class GetRewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None  # sent by OpenRLHF's remote_rm_fn; a sequence RM does not need them
    labels: list | None = None


def get_reward_response(scores: list[float]) -> dict:
    # OpenRLHF reads "rewards" (the RL reward) and "scores" (for dynamic filtering); a BT reward
    # model's raw reward is both.
    return {"rewards": scores, "scores": scores, "extra_logs": {}}


def models_response(models: dict[str, dict]) -> dict:
    now = int(time.time())
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": now, "owned_by": "synpref", "root": info["path"],
         "parent": None, "max_model_len": info["max_length"]}
        for name, info in models.items()]}
