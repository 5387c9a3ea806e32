"""The pre-processing filters over batches of pair rows (lists of dicts in PAIR_SCHEMA).

A filter only decides: it looks at the rows that are still kept and marks the ones it drops with its
name and a reason. Nothing is removed from the batch, so every row reaches the writer and the counts
of a run are read back from its output (synpref.record.counts). Steps are plain Python: they run the same in
a unit test over a list and inside a Ray Data actor.
"""

from __future__ import annotations

from synpref.record.ops import record_decision
from synpref.record.schema import DROPPED, KEPT


class PairFilter:
    """Base for steps that judge one pair at a time: `reason(row)` returns None to keep."""

    name = "filter"

    def reason(self, row: dict) -> str | None:
        raise NotImplementedError

    def __call__(self, rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["status"] == KEPT:
                why = self.reason(row)
                if why:
                    record_decision(row, stage=self.name, status=DROPPED, reason=why)
        return rows


class RequireResponses(PairFilter):
    """DESIGN.md 1: drop pairs whose chosen or rejected response is missing (and useless equal ones)."""

    name = "require_responses"

    def reason(self, row):
        if row["chosen"] is None:
            return "missing_chosen"
        if row["rejected"] is None:
            return "missing_rejected"
        if row["chosen"] == row["rejected"]:
            return "identical_responses"
        return None


class Decontaminate(PairFilter):
    """Drop a pair sharing an n-gram with a benchmark's first-turn prompt (synpref.preprocess.decontam)."""

    name = "decontaminate"

    def __init__(self, index, fields: str = "prompt"):
        self.index = index
        self.fields = fields

    def reason(self, row):
        texts = [m["content"] for m in row["conversation"] if m["role"] == "user"]
        if self.fields == "all":
            texts += [row["chosen"], row["rejected"]]
        return "benchmark_ngram_overlap" if self.index.overlaps(texts) else None


class Deduplicate:
    """Global exact dedup on (conversation, chosen, rejected) through a shared SeenKeys state."""

    name = "dedup"

    def __init__(self, seen):
        # `seen` has add(keys: np.ndarray[uint64]) -> np.ndarray[bool] (True = first time seen);
        # a synpref.preprocess.dedup.SeenKeys, or a Ray actor handle of one (wrapped by synpref.preprocess.dedup.remote).
        self.seen = seen

    def __call__(self, rows):
        import numpy as np

        from synpref.record.schema import dedup_key

        live = [row for row in rows if row["status"] == KEPT]
        if not live:
            return rows
        keys = np.fromiter((dedup_key(row["pair_id"]) for row in live), dtype=np.uint64, count=len(live))
        for row, first in zip(live, self.seen.add(keys)):
            if not first:
                record_decision(row, stage=self.name, status=DROPPED, reason="duplicate")
        return rows
