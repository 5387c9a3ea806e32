"""Reward-model scoring of pairs, the part both backends share: this stage's decisions on a pair, and
its token ids under each model (synpref.rm.format: chat template, BOS strip, left truncation).

A kept pair too long for `max_length` under any model's tokenizer is scored on its last max_length
tokens (overflow=truncate: it stays kept, marked stage=score reason=truncated so the count is read
back from the output) or quarantined (overflow=quarantine: reason too_long). A decision of an
earlier job moves into `history`. Rows that are not kept pass through unchanged.
"""

from __future__ import annotations

import hashlib

from synpref.record.ops import record_decision
from synpref.record.schema import KEPT, QUARANTINED
from synpref.rm.format import encode, rm_text

STAGE = "score"


STAGES = [STAGE]


OVERFLOW_POLICIES = ("truncate", "quarantine")


TOO_LONG = "too_long"


TRUNCATED = "truncated"


ENGINE_ERROR = "engine_error"


BACKENDS = ("transformers", "vllm")


def decide(row: dict, status: str, reason: str | None) -> None:
    """This stage's outcome: a kept pair scored whole is no decision of ours (stage null)."""
    record_decision(row, stage=STAGE if (status != KEPT or reason) else None, status=status, reason=reason)


def is_kept(row: dict) -> bool:
    return (row.get("status") or KEPT) == KEPT  # a pairs/status=kept folder carries no status column


def tokenizer_fingerprint(tokenizer) -> str:
    """Equal for tokenizers that make the same ids (two RMs fine-tuned from one base share them)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    parts = [backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items())),
             str(tokenizer.chat_template), str(tokenizer.bos_token)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def encode_pairs(tokenizer, rows: list[dict], max_length: int):
    """(chosen ids, rejected ids, too long) per pair, through rm_format; ids left-truncated."""
    texts = [rm_text(tokenizer, r["conversation"], r["chosen"]) for r in rows]
    texts += [rm_text(tokenizer, r["conversation"], r["rejected"]) for r in rows]
    ids, truncated = encode(tokenizer, texts, max_length) if texts else ([], [])
    n = len(rows)
    return ids[:n], ids[n:], [a or b for a, b in zip(truncated[:n], truncated[n:])]


class PairEncoder:
    """Token ids of pairs for several models; models whose tokenizers agree encode once."""

    def __init__(self, tokenizers: list, max_length: int):
        self.max_length = max_length
        self.tokenizers = tokenizers
        self.fingerprints = [tokenizer_fingerprint(t) for t in tokenizers]

    def __call__(self, rows: list[dict]) -> tuple[list[tuple], list[bool]]:
        """Per model (chosen ids, rejected ids); and per pair: too long under any model."""
        done: dict[str, tuple] = {}
        for tokenizer, fp in zip(self.tokenizers, self.fingerprints):
            if fp not in done:
                done[fp] = encode_pairs(tokenizer, rows, self.max_length)
        too_long = [any(flags[i] for *_, flags in done.values()) for i in range(len(rows))]
        return [done[fp][:2] for fp in self.fingerprints], too_long


def overflow_outcome(too_long: bool, overflow: str) -> tuple[str, str | None]:
    if not too_long:
        return KEPT, None
    return (QUARANTINED, TOO_LONG) if overflow == "quarantine" else (KEPT, TRUNCATED)
