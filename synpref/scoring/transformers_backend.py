"""The transformers backend of reward-model scoring: `ScorePairs`, a callable class for `map_batches`
holding every model (so the best RM and the gold RM score a batch in one pass over the data); each
model scores the batch's pairs through RewardScorer.score_pairs (length-sorted micro-batches, with
share_prompt one row per pair whose conversation is computed once for both responses). An entry of the same model name in rm_scores is replaced; entries of
other models stay.
"""

from __future__ import annotations

import pyarrow as pa

from synpref.record.ops import with_score
from synpref.record.schema import KEPT, to_table
from synpref.scoring.pairs import OVERFLOW_POLICIES, PairEncoder, decide, is_kept, overflow_outcome

def score_rows(rows: list[dict], scorers: list[tuple[str, object]], encoder: PairEncoder, overflow: str,
               share_prompt: bool = True) -> list[dict]:
    """Score the kept rows with every (name, RewardScorer); returns the rows, updated in place."""
    todo = [r for r in rows if is_kept(r)]
    per_model, too_long = encoder(todo)
    keep = []
    for i, (row, long) in enumerate(zip(todo, too_long)):
        status, reason = overflow_outcome(long, overflow)
        decide(row, status, reason)
        if status == KEPT:
            keep.append(i)
    for (name, scorer), (chosen, rejected) in zip(scorers, per_model):
        r_chosen, r_rejected = scorer.score_pairs([chosen[i] for i in keep], [rejected[i] for i in keep],
                                                  share_prompt=share_prompt) if keep else ([], [])
        for j, i in enumerate(keep):
            todo[i]["rm_scores"] = with_score(todo[i].get("rm_scores"), name, r_chosen[j], r_rejected[j])
    return rows


class ScorePairs:
    """`ds.map_batches(ScorePairs, batch_format="pyarrow", compute=ActorPoolStrategy(...),
    fn_constructor_kwargs=dict(models=[{name, path}, ...], max_length=..., overflow=...))`.

    Holds every model on `device`; a batch of PAIR_SCHEMA rows in, the same rows out, scored."""

    def __init__(self, models: list[dict], *, max_length: int, overflow: str = "truncate", device: str = "cpu",
                 dtype: str = "auto", max_tokens_per_forward: int = 4096, max_rows_per_forward: int = 64,
                 torch_threads: int | None = None, share_prompt: bool = True):
        from synpref.rm.weights import resolve_model
        from synpref.rm.scorer import RewardScorer

        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow={overflow!r}: choose one of {OVERFLOW_POLICIES}")
        self.scorers = [(m["name"], RewardScorer(resolve_model(m["path"]), device=device, dtype=dtype,
                                                 max_tokens_per_forward=max_tokens_per_forward,
                                                 max_rows_per_forward=max_rows_per_forward,
                                                 torch_threads=torch_threads)) for m in models]
        self.encoder = PairEncoder([s.tokenizer for _, s in self.scorers], max_length)
        self.overflow = overflow
        self.share_prompt = share_prompt

    def __call__(self, batch: pa.Table) -> pa.Table:
        return to_table(score_rows(batch.to_pylist(), self.scorers, self.encoder, self.overflow, self.share_prompt))
