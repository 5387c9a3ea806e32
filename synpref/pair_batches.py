"""Pairs -> padded tensors for one forward of chosen and rejected together.

Batches are length-grouped: a window of pairs is sorted by length and cut into micro-batches whose
order is then shuffled (seeded), so a micro-batch holds pairs of similar length and little compute
goes to padding (`padding_fraction` measures it). Pairs over max_length are left-truncated (the
response end is kept) or dropped, by config, and counted either way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from synpref.rm_format import encode, pad_batch, rm_text

OVERFLOW_POLICIES = ("truncate", "drop")


@dataclass
class TokenizedPair:
    chosen: list[int]
    rejected: list[int]
    margin: float = 0.0

    @property
    def length(self) -> int:
        return max(len(self.chosen), len(self.rejected))


@dataclass
class OverflowCounts:
    pairs: int = 0
    truncated: int = 0
    dropped: int = 0

    def add(self, other: "OverflowCounts") -> None:
        self.pairs += other.pairs
        self.truncated += other.truncated
        self.dropped += other.dropped


def tokenize_pairs(rows: list[dict], tokenizer, max_length: int, overflow: str) -> tuple[list[TokenizedPair], OverflowCounts]:
    texts = [rm_text(tokenizer, r["conversation"], r["chosen"]) for r in rows]
    texts += [rm_text(tokenizer, r["conversation"], r["rejected"]) for r in rows]
    ids, truncated = encode(tokenizer, texts, max_length)
    n = len(rows)
    counts = OverflowCounts(pairs=n)
    pairs = []
    for i, row in enumerate(rows):
        too_long = truncated[i] or truncated[n + i]
        if too_long and overflow == "drop":
            counts.dropped += 1
            continue
        counts.truncated += int(too_long)
        pairs.append(TokenizedPair(ids[i], ids[n + i], float(row.get("margin") or 0.0)))
    return pairs, counts


def length_grouped(pairs: list[TokenizedPair], micro_batch_size: int, rng: random.Random) -> list[list[TokenizedPair]]:
    ordered = sorted(pairs, key=lambda p: p.length)
    batches = [ordered[i:i + micro_batch_size] for i in range(0, len(ordered), micro_batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass
class PairBatch:
    input_ids: torch.Tensor  # (2B, L): chosen rows first, then rejected
    attention_mask: torch.Tensor
    margin: torch.Tensor  # (B,)
    real_tokens: int = field(default=0)
    padded_tokens: int = field(default=0)

    @property
    def size(self) -> int:
        return self.margin.shape[0]


def collate(batch: list[TokenizedPair], pad_id: int) -> PairBatch:
    ids = [p.chosen for p in batch] + [p.rejected for p in batch]
    input_ids, mask = pad_batch(ids, pad_id)
    real = int(mask.sum())
    return PairBatch(input_ids, mask, torch.tensor([p.margin for p in batch], dtype=torch.float32),
                     real_tokens=real, padded_tokens=int(mask.numel()))


def padding_fraction(batches: list[PairBatch]) -> float:
    padded = sum(b.padded_tokens for b in batches)
    return 1 - sum(b.real_tokens for b in batches) / padded if padded else 0.0
