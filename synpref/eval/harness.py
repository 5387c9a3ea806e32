"""Glue between loaded items, reward scores and the scorers.

``score_items(items, scores)`` takes the EvalItems of one or more benchmarks and one reward per
response of each item, turns them into the records each scorer reads, and returns the metrics per
benchmark. Computing the rewards (a model) is someone else's job.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

from synpref.eval import loaders
from synpref.eval.loaders import EvalItem
from synpref.eval.headline import (
    score_judgebench,
    score_ppe_correctness,
    score_ppe_preference,
    score_rewardbench,
    score_rewardbench2,
    score_rm_bench,
    score_rmb,
)
from synpref.eval.common import as_floats


def _split(item: EvalItem, scores: list[float]) -> tuple[list[float], list[float]]:
    """(scores of chosen responses, scores of rejected ones), each in response order."""
    chosen = [s for s, ok in zip(scores, item.is_chosen) if ok]
    rejected = [s for s, ok in zip(scores, item.is_chosen) if not ok]
    return chosen, rejected


def _only(values: list[float], item: EvalItem, what: str) -> float:
    if len(values) != 1:
        raise ValueError(f"{item.key}: expected one {what} response, found {len(values)}")
    return values[0]


def _record(item: EvalItem, scores: list[float]) -> dict:
    """The scorer's input record for one item."""
    chosen, rejected = _split(item, scores)
    if item.benchmark == loaders.REWARDBENCH:
        return {"subset": item.subset, "score_chosen": _only(chosen, item, "chosen"),
                "score_rejected": _only(rejected, item, "rejected")}
    if item.benchmark == loaders.REWARDBENCH2:
        num_correct = item.extra.get("num_correct", len(chosen))
        if item.is_chosen != [True] * num_correct + [False] * (len(scores) - num_correct):
            raise ValueError(f"{item.key}: RewardBench 2 needs the chosen responses first")
        return {"subset": item.subset, "id": item.sample_id, "scores": scores, "num_correct": num_correct}
    if item.benchmark == loaders.RM_BENCH:
        return {"domain": item.subset, "score_chosen": chosen, "score_rejected": rejected}
    if item.benchmark == loaders.JUDGEBENCH:
        return {"source": item.subset, "label": item.extra["label"], "score_A": scores[0], "score_B": scores[1]}
    if item.benchmark == loaders.RMB:
        if item.extra.get("set") == "bon":
            return {"category": item.subset, "score_best": _only(chosen, item, "best"), "scores_losers": rejected}
        return {"category": item.subset, "score_chosen": _only(chosen, item, "chosen"),
                "score_rejected": _only(rejected, item, "rejected")}
    if item.benchmark == loaders.PPE_PREFERENCE:
        return {"winner": item.extra["winner"], "score_1": scores[0], "score_2": scores[1]}
    if item.benchmark == loaders.PPE_CORRECTNESS:
        return {"benchmark": item.subset, "scores": scores, "correct": item.is_chosen,
                "conflict_pairs": item.extra.get("conflict_pairs")}
    raise ValueError(f"{item.key}: unknown benchmark {item.benchmark!r}")


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
    """Score items of any benchmarks with their official rules.

    scores: one reward per response of each item, either a list aligned with items or a mapping
        EvalItem.key -> rewards. A reward may be a float or a one-element list.
    ppe_k: best-of-K for PPE correctness (default: the scorer's 32).
    Returns benchmark key -> that scorer's metrics dict.
    """
    records: dict[str, list[dict]] = defaultdict(list)
    for item, item_scores in zip(items, _aligned_scores(items, scores)):
        records[item.benchmark].append(_record(item, item_scores))

    results: dict[str, dict] = {}
    for benchmark, rows in records.items():
        if benchmark == loaders.REWARDBENCH:
            results[benchmark] = score_rewardbench(rows)
        elif benchmark == loaders.REWARDBENCH2:
            results[benchmark] = score_rewardbench2(rows)
        elif benchmark == loaders.RM_BENCH:
            results[benchmark] = score_rm_bench(rows)
        elif benchmark == loaders.JUDGEBENCH:
            results[benchmark] = score_judgebench(rows)
        elif benchmark == loaders.RMB:
            results[benchmark] = score_rmb(
                pairwise=[r for r in rows if "score_chosen" in r],
                bon=[r for r in rows if "score_best" in r],
            )
        elif benchmark == loaders.PPE_PREFERENCE:
            results[benchmark] = score_ppe_preference(rows)
        elif benchmark == loaders.PPE_CORRECTNESS:
            kwargs = {} if ppe_k is None else {"k": ppe_k}
            results[benchmark] = score_ppe_correctness(rows, **kwargs)
    return results
