"""Stage 2's keep rule (DESIGN.md section 3), applied to scored pool rows by jobs/stage2.py.

A pair keeps its chosen/rejected order when the gold RM agrees with it AND either the judges or the
current best RM do. "Agrees" is p > 0.5 + margin (margins in config; the paper gives no number). Pairs
the best RM is unsure of (p_best < 0.5 + unconfident_margin) were sent to the judges first and come
back with their votes and label; a pair the judges never saw, or could not judge, counts as "judges
do not agree". Every row says which rule decided it (reason), and with flip recycling a dropped pair
comes back once more, flipped, as a new kept row.
"""

from __future__ import annotations

import pyarrow as pa

from synpref.record.ops import flip, p_of, record_decision
from synpref.record.schema import DROPPED, KEPT, QUARANTINED, map_rows

STAGE = "stage2"
KEPT_GOLD_JUDGES = "gold_rm+judges"
KEPT_GOLD_BEST = "gold_rm+best_rm"
DROPPED_GOLD = "gold_rm_disagrees"
DROPPED_OTHERS = "judges_and_best_rm_disagree"
DROPPED_UNSCORED = "not_scored"
SILVER = "stage1_silver"
FLIPPED = "flipped:"  # reason prefix of a recycled pair: flipped:<the rule that dropped it>


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


def judged_by_the_judges(row: dict) -> bool:
    """The judges answered on this pair (a pair they failed on was quarantined at stage judge)."""
    return (row.get("status") or KEPT) == KEPT and row.get("judge_label") is not None


def apply_keep_rule(batch: pa.Table, *, best: str, gold: str, gold_margin: float, best_margin: float,
                    flip_dropped: bool) -> pa.Table:
    """Ray Data batch of scored pool rows (the unconfident ones with the judges' votes and label) ->
    the same rows decided, + flipped ones. Rows the scorer quarantined (too long) pass through."""
    def decide_rows(rows: list[dict]) -> list[dict]:
        out = []
        for row in rows:
            if row["status"] == QUARANTINED and row.get("stage") != "judge":
                out.append(row)
                continue
            label = row.get("judge_label") if judged_by_the_judges(row) else None
            status, rule = decide(row, label, best=best, gold=gold, gold_margin=gold_margin, best_margin=best_margin)
            decided = record_decision(row, stage=STAGE, status=status, reason=rule)
            out.append(decided)
            if status == DROPPED and flip_dropped and rule != DROPPED_UNSCORED:
                out.append(flip(decided, stage=STAGE, reason=f"{FLIPPED}{rule}"))
        return out

    return map_rows(batch, decide_rows)


def silver_row(row: dict) -> dict:
    """A D_silver pair joins the curated pool as it is, decided by Stage 1."""
    return record_decision(dict(row), stage=STAGE, status=KEPT, reason=SILVER)


def is_recycled(row: dict) -> bool:
    return (row.get("reason") or "").startswith(FLIPPED)
