"""Glue between loaded items, reward scores and each benchmark's metrics.

``score_items(items, scores)`` takes the EvalItems of one or more benchmarks and one reward per
response of each item, turns them into the records each benchmark's metrics read (registry.BENCHMARKS)
and returns the metrics per benchmark. Computing the rewards (a model) is someone else's job.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Mapping, Sequence

from synpref.eval.common import as_floats
from synpref.eval.items import EvalItem
from synpref.eval.ppe import PPE_CORRECTNESS
from synpref.eval.registry import BENCHMARKS


def _aligned_scores(items: Sequence[EvalItem], scores) -> list[list[float]]:
    if isinstance(scores, Mapping):
        missing = [item.key for item in items if item.key not in scores]
        if missing:
            raise KeyError(f"no scores for {len(missing)} items, e.g. {missing[:3]} (keys are EvalItem.key)")
        per_item = [scores[item.key] for item in items]
    else:
        per_item = list(scores)
        if len(per_item) != len(items):
            raise ValueError(f"{len(per_item)} score lists for {len(items)} items")
    aligned = []
    for item, item_scores in zip(items, per_item):
        values = as_floats(item_scores)
        if len(values) != len(item.responses):
            raise ValueError(f"{item.key}: {len(values)} scores for {len(item.responses)} responses")
        aligned.append(values)
    return aligned


def score_items(items: Sequence[EvalItem], scores: Mapping[str, Sequence] | Sequence[Sequence],
                *, ppe_k: int | None = None) -> dict[str, dict]:
    """Each benchmark's official metrics of the items, given their rewards.

    scores: one reward per response of each item, either a list aligned with items or a mapping
        EvalItem.key -> rewards. A reward may be a float or a one-element list.
    ppe_k: best-of-K for PPE correctness (default: its metrics' 32).
    Returns benchmark key -> that benchmark's metrics dict, in the order the benchmarks first appear.
    """
    records: dict[str, list[dict]] = defaultdict(list)
    for item, item_scores in zip(items, _aligned_scores(items, scores)):
        benchmark = BENCHMARKS.get(item.benchmark)
        if benchmark is None:
            raise ValueError(f"{item.key}: unknown benchmark {item.benchmark!r}")
        records[item.benchmark].append(benchmark.record(item, item_scores))

    results: dict[str, dict] = {}
    for name, rows in records.items():
        metrics = BENCHMARKS[name].metrics
        if name == PPE_CORRECTNESS and ppe_k is not None:
            metrics = partial(metrics, k=ppe_k)
        results[name] = metrics(rows)
    return results
