"""Pairs -> padded tensors for one forward of chosen and rejected together.

Two layouts. `collate`: chosen rows then rejected rows, each right-padded (every model, every attention
kernel). `collate_shared` (train.share_prompt): one row per pair holding the tokens chosen and rejected
share (the conversation) once, then both tails, under a 4D mask (synpref.rm.shared_prompt, which
scoring uses too): the conversation, usually most of a pair's tokens, is computed once instead of twice.

Batches are length-grouped: a window of pairs is sorted by length and cut into micro-batches whose
order is then shuffled (seeded), so a micro-batch holds pairs of similar length and little compute
goes to padding (`padding_fraction` measures it). Pairs over max_length are left-truncated (the
response end is kept) or dropped, by config, and counted either way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

import torch

from synpref.rm.format import encode, pad_batch, rm_text
from synpref.rm.shared_prompt import pack, packed_length, shared_length

OVERFLOW_POLICIES = ("truncate", "drop")


@dataclass
class TokenizedPair:
    chosen: list[int]
    rejected: list[int]
    margin: float = 0.0

    @property
    def length(self) -> int:
        return max(len(self.chosen), len(self.rejected))

    @cached_property  # a Python loop over the prefix: sorting and collating ask for it several times
    def shared(self) -> int:
        return shared_length(self.chosen, self.rejected)

    @property
    def packed_length(self) -> int:
        return packed_length(self.chosen, self.rejected, self.shared)


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


def length_grouped(pairs: list[TokenizedPair], micro_batch_size: int, rng: random.Random,
                   packed: bool = False) -> list[list[TokenizedPair]]:
    ordered = sorted(pairs, key=lambda p: p.packed_length if packed else p.length)
    batches = [ordered[i:i + micro_batch_size] for i in range(0, len(ordered), micro_batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass
class PairBatch:
    input_ids: torch.Tensor  # (2B, L): chosen rows first, then rejected; shared layout: (B, L)
    attention_mask: torch.Tensor  # (2B, L) of 0/1; shared layout: (B, 1, L, L) bool, True = may attend
    margin: torch.Tensor  # (B,)
    real_tokens: int = field(default=0)  # tokens of chosen + rejected as sequences of their own
    padded_tokens: int = field(default=0)  # tokens the forward computes, padding included
    computed_tokens: int = field(default=0)  # of those, real ones (fewer than real_tokens when shared)
    position_ids: torch.Tensor | None = None  # shared layout only, with the two rows below
    chosen_end: torch.Tensor | None = None  # (B,) column of the chosen tail's last token
    rejected_end: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.margin.shape[0]


def collate(batch: list[TokenizedPair], pad_id: int) -> PairBatch:
    ids = [p.chosen for p in batch] + [p.rejected for p in batch]
    input_ids, mask = pad_batch(ids, pad_id)
    real = int(mask.sum())
    return PairBatch(input_ids, mask, torch.tensor([p.margin for p in batch], dtype=torch.float32),
                     real_tokens=real, padded_tokens=int(mask.numel()), computed_tokens=real)


def collate_shared(batch: list[TokenizedPair], pad_id: int) -> PairBatch:
    """One row per pair: shared tokens, chosen tail, rejected tail (synpref.rm.shared_prompt)."""
    layout = pack([(p.chosen, p.rejected, p.shared) for p in batch], pad_id)
    return PairBatch(layout.input_ids, layout.attention_mask, torch.tensor([p.margin for p in batch], dtype=torch.float32),
                     real_tokens=sum(len(p.chosen) + len(p.rejected) for p in batch),
                     padded_tokens=int(layout.input_ids.numel()), computed_tokens=layout.computed_tokens,
                     position_ids=layout.position_ids, chosen_end=layout.chosen_end, rejected_end=layout.rejected_end)


def padding_fraction(batches: list[PairBatch]) -> float:
    padded = sum(b.padded_tokens for b in batches)
    return 1 - sum(b.computed_tokens for b in batches) / padded if padded else 0.0
