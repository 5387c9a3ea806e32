"""Stage 1's own steps (DESIGN.md section 2); jobs/stage1.py runs them between the train, score,
annotate and verify jobs.

Error-driven adaptive retrieval: a gold pair the current RM gets wrong (p <= 0.5) pulls k_max similar
unverified pairs, one it gets right pulls ceil(k_max * (1 - p)): the less sure the RM, the more
neighbours go to the judges. Judge-labelled pairs then join D_silver in the judges' order.
"""

from __future__ import annotations

import math
from typing import Callable

import pyarrow as pa

from synpref.record.ops import flip, pair_key, record_decision
from synpref.record.schema import KEPT
from synpref.runner.runs import config_fingerprint

STAGE = "stage1"
# D_silver's bootstrap: pool pairs with the data's own label. They only train the first RM; nobody
# verified them, so they stay candidates for retrieval and Stage 2 decides them like any pool pair.
SEED = "seed: the pool's own label"


def adaptive_k(p: float, k_max: int) -> int:
    return k_max if p <= 0.5 else math.ceil(k_max * (1.0 - p))


def retrieve_neighbours(gold: list[dict], p_by_key: dict[str, float], search: Callable, *, k_max: int,
                        budget: int | None = None) -> tuple[list, dict]:
    """Pool pairs to label: the union over gold pairs of each one's k nearest unverified pairs.

    `search(k)` returns, per gold pair, the ids of its k nearest candidates (unverified: not in D_gold
    nor labelled into D_silver), best first, and the number of candidates. A gold pair without a score
    (quarantined when scored) counts as wrong: it pulls k_max. Gold pairs are served from the least to
    the most confident, so under a labelling `budget` (max pairs) the neighbours of the RM's errors
    come first; a neighbour two gold pairs share is taken once."""
    ks = [adaptive_k(p_by_key.get(pair_key(g), 0.0), k_max) for g in gold]
    chosen: dict = {}
    found, candidates = search(max(ks, default=0))
    by_confidence = sorted(range(len(gold)), key=lambda i: p_by_key.get(pair_key(gold[i]), 0.0))
    for i in by_confidence:
        for pair in found[i][:ks[i]]:
            if budget is None or len(chosen) < budget:
                chosen.setdefault(pair, None)
    wrong = sum(1 for g in gold if p_by_key.get(pair_key(g), 0.0) <= 0.5)
    return list(chosen), {"gold_pairs": len(gold), "gold_wrong": wrong, "k_requested": sum(ks),
                          "candidates": int(candidates), "retrieved": len(chosen)}


def seed_ranked(batch: pa.Table, *, seed: int, n: int, excluded: frozenset) -> pa.Table:
    """The block's n pairs (keys not in `excluded`) first in D_silver's seed order, a hash of
    (seed, pair_id): any n of the pool, the same on every run and whatever the block boundaries."""
    ranked = sorted((config_fingerprint({"seed": seed, "pair": pid}), pid)
                    for pid, key in zip(batch["pair_id"].to_pylist(), batch["key"].to_pylist()) if key not in excluded)
    return pa.table({"rank": pa.array([r for r, _ in ranked[:n]], pa.string()),
                     "pair_id": pa.array([p for _, p in ranked[:n]], pa.string())})


def silver_additions(labelled: list[dict], *, iteration: int) -> tuple[list[dict], dict]:
    """Judge-labelled pairs -> D_silver rows in the judges' order: "chosen" as is, "rejected" flipped,
    "tie" (or no label) left out and counted."""
    added, counts = [], {"chosen": 0, "rejected": 0, "tie": 0}
    for row in labelled:
        label = row.get("judge_label")
        if label == "chosen":
            out = record_decision(dict(row), stage=STAGE, status=KEPT,
                                  reason=f"iteration {iteration}: judges kept the order")
        elif label == "rejected":
            out = flip(row, stage=STAGE, reason=f"iteration {iteration}: judges flipped the order")
        else:
            counts["tie"] += 1
            continue
        counts[label] += 1
        out["is_silver"] = True
        added.append(out)
    return added, counts


def seed_silver_rows(rows: list[dict]) -> list[dict]:
    """D_silver's start: pool pairs with their own labels (reason SEED)."""
    out = []
    for row in rows:
        row = record_decision(dict(row), stage=STAGE, status=KEPT, reason=SEED)
        row["is_silver"] = True
        out.append(row)
    return out


def is_verified_silver(row: dict) -> bool:
    """A D_silver pair the judges labelled (not the bootstrap's own label)."""
    return row.get("reason") != SEED


def grown_silver(silver: list[dict], added: list[dict]) -> list[dict]:
    """D_silver with the judge-labelled pairs added; an added pair replaces its seed row (same pair)."""
    replaced = {pair_key(r) for r in added}
    return [r for r in silver if pair_key(r) not in replaced] + added


def best_iteration(rows: list[dict]) -> dict:
    """The iteration whose RM had the best gold accuracy (the later one on a tie: more data)."""
    return max(rows, key=lambda r: (r["gold_accuracy"], r["iteration"]))
