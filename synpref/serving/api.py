"""HTTP request and response shapes of the reward-model server: synpref's own and OpenRLHF's.

- native (synpref): POST /v1/reward  {"model"?, "items": [{"conversation": [...], "response": str}], "truncate"?}
                    POST /v1/compare {"model"?, "pairs": [{"conversation": [...], "chosen", "rejected"}]}
  The server formats each item with the model's chat template (synpref.rm.format), as training does.
- OpenRLHF:         POST /get_reward {"query": [str], "prompts"?, "labels"?} -> rewards, scores, extra_logs.
  Queries are texts the client formatted and decoded with their special tokens (OpenRLHF's
  remote RM client, openrlhf/utils/agent.py), so they are encoded without adding any, as
  OpenRLHF's own server (openrlhf/cli/serve_rm.py) does.
vLLM's routes (/classify, /pooling, /score, /rerank) are in synpref.serving.api_vllm.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from synpref.record.ops import sigmoid


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


class RewardItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: Conversation
    response: str


class RewardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    items: list[RewardItem] = Field(min_length=1)
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


def reward_response(model: str, scores: list[float], num_tokens: list[int], truncated: list[bool]) -> dict:
    return {"object": "list", "model": model, "scores": scores, "num_tokens": num_tokens, "truncated": truncated}


def compare_response(model: str, chosen: list[float], rejected: list[float]) -> dict:
    data = []
    for i, (c, r) in enumerate(zip(chosen, rejected)):
        # p = sigmoid(r_w - r_l): the Bradley-Terry probability that the chosen response is better
        preferred = "chosen" if c > r else "rejected" if r > c else "tie"
        data.append({"index": i, "score_chosen": c, "score_rejected": r, "margin": c - r,
                     "p_chosen": sigmoid(c - r), "preferred": preferred})
    return {"object": "list", "model": model, "data": data}


class GetRewardRequest(BaseModel):
    """OpenRLHF sends one query per sample, and with several RM URLs the extra ones get empty lists:
    those are answered with empty lists, not an error."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    query: list[str]
    prompts: list[str] | None = None  # a sequence RM does not need them
    labels: list | None = None


def get_reward_response(scores: list[float]) -> dict:
    # OpenRLHF reads "rewards" (the RL reward), "scores" (dynamic filtering) and "extra_logs"; a BT
    # reward model's raw reward is both
    return {"rewards": scores, "scores": scores, "extra_logs": {}}


def models_response(models: dict[str, dict]) -> dict:
    now = int(time.time())
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": now, "owned_by": "synpref", "root": info["path"],
         "parent": None, "max_model_len": info["max_length"]}
        for name, info in models.items()]}
