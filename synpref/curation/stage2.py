"""Stage 2's keep rule (DESIGN.md section 3), applied to scored pool rows by jobs/stage2.py.

A pair keeps its chosen/rejected order when the gold RM agrees with it AND either the judges or the
current best RM do. "Agrees" is p > 0.5 + margin (margins in config; the paper gives no number). Pairs
the best RM is unsure of (p_best < 0.5 + unconfident_margin) were sent to the judges first; a pair the
judges never saw counts as "judges do not agree". Every row says which rule decided it (reason), and
with flip recycling a dropped pair comes back once more, flipped, as a new kept row.
"""

from __future__ import annotations

import pyarrow as pa

from synpref.record.pairs_io import flipped
from synpref.record.schema import DROPPED, KEPT, to_table
from synpref.curation.stage1 import p_of

KEPT_GOLD_JUDGES = "gold_rm+judges"
KEPT_GOLD_BEST = "gold_rm+best_rm"
DROPPED_GOLD = "gold_rm_disagrees"
DROPPED_OTHERS = "judges_and_best_rm_disagree"
DROPPED_UNSCORED = "not_scored"


def unconfident(row: dict, *, best: str, margin: float) -> bool:
    p = p_of(row, best)
    return p is None or p < 0.5 + margin


def decide(row: dict, judge_label: str | None, *, best: str, gold: str, gold_margin: float,
           best_margin: float) -> tuple[str, str]:
    """(status, rule) of one scored pool pair."""
    p_gold, p_best = p_of(row, gold), p_of(row, best)
    if p_gold is None or p_best is None:
        return DROPPED, DROPPED_UNSCORED
    if p_gold <= 0.5 + gold_margin:
        return DROPPED, DROPPED_GOLD
    if judge_label == "chosen":
        return KEPT, KEPT_GOLD_JUDGES
    if p_best > 0.5 + best_margin:
        return KEPT, KEPT_GOLD_BEST
    return DROPPED, DROPPED_OTHERS


def apply_keep_rule(batch: pa.Table, *, judge_labels: dict, best: str, gold: str, gold_margin: float,
                    best_margin: float, flip_dropped: bool) -> pa.Table:
    """Ray Data batch (PAIR rows, kept ones scored) -> the same rows decided, + flipped ones."""
    out = []
    for row in batch.to_pylist():
        if row["status"] != KEPT:  # quarantined by scoring (too long): passes through as it is
            out.append(row)
            continue
        label = judge_labels.get(row["pair_id"])
        status, rule = decide(row, label, best=best, gold=gold, gold_margin=gold_margin, best_margin=best_margin)
        history = list(row.get("history") or [])
        if row.get("stage"):
            history.append({"stage": row["stage"], "status": row["status"], "reason": row.get("reason")})
        decided = dict(row, status=status, stage="stage2", reason=rule, history=history,
                       judge_label=label if label is not None else row.get("judge_label"))
        out.append(decided)
        if status == DROPPED and flip_dropped and rule != DROPPED_UNSCORED:
            out.append(flipped(decided, stage="stage2", reason=f"flipped:{rule}"))
    return to_table(out)
