"""The figures of the curation report that need the demo world's truth (synpref.demo.world).

The truth is read here and by the simulated annotator only; no curation stage reads it. Every figure
is given overall, for the learnable and the hard families, and per family:
  label figures of a set of pairs: pairs whose prompt the truth knows, how many carry the correct
      label, precision (correct / known) and recall (correct / the correctly labelled pool pairs
      curation could keep: the pool outside D_gold);
  the Stage 2 filter as a classifier of "this label is right" over the pool pairs it decided;
  held-out accuracy of each final RM (p > 0.5 on a held-out pair, whose chosen response is the
      correct one), with 95% Wilson intervals;
  the judges' accuracy on D_gold by family (their calibration answers), coverage and position bias.
"""

from __future__ import annotations

from synpref.annotation.judging import position_bias_counts
from synpref.demo.world import FAMILIES, HARD, LEARNABLE, family_of, is_correct
from synpref.record.counts import wilson
from synpref.record.ops import p_of, pair_key
from synpref.record.schema import KEPT

GROUPS = {"overall": FAMILIES, "learnable": LEARNABLE, "hard": HARD}


def _share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def by_group(per_family: dict[str, dict], total) -> dict:
    """{overall, learnable, hard, families: {...}} from per-family counters, summed by `total`."""
    out = {name: total([per_family[f] for f in families if f in per_family]) for name, families in GROUPS.items()}
    out["families"] = {f: total([per_family[f]]) for f in FAMILIES if f in per_family}
    return out


def available_correct(pool: list[dict], gold: list[dict], truth: dict) -> dict[str, int]:
    """Per family: pool pairs outside D_gold whose own label is correct (the recall's denominator)."""
    in_gold = {pair_key(g) for g in gold}
    counts = dict.fromkeys(FAMILIES, 0)
    for row in pool:
        if pair_key(row) not in in_gold and is_correct(row, truth):
            counts[family_of(row, truth)] += 1
    return counts


def label_figures(rows: list[dict], truth: dict, correct_available: dict[str, int] | None) -> dict:
    """`correct_available` None: no recall (the pool itself, D_gold: sets curation does not choose from)."""
    per_family = {f: {"pairs": 0, "known": 0, "correct": 0,
                      "available": None if correct_available is None else correct_available.get(f, 0)}
                  for f in FAMILIES}
    for row in rows:
        family = family_of(row, truth)
        if family is None:
            continue
        right = is_correct(row, truth)
        per_family[family]["pairs"] += 1
        per_family[family]["known"] += right is not None
        per_family[family]["correct"] += right is True

    def total(parts):
        known, correct = sum(p["known"] for p in parts), sum(p["correct"] for p in parts)
        recall = None if correct_available is None else _share(correct, sum(p["available"] for p in parts))
        return {"pairs": sum(p["pairs"] for p in parts), "correct": correct,
                "precision": _share(correct, known), "recall": recall}

    return by_group(per_family, total)


def filter_quality(decided: list[dict], truth: dict) -> dict:
    """The keep rule as a classifier of "this label is right" over the pool pairs it decided."""
    per_family = {f: {"tp": 0, "fp": 0, "fn": 0, "tn": 0} for f in FAMILIES}
    for row in decided:
        right, family = is_correct(row, truth), family_of(row, truth)
        if right is None or family is None:
            continue
        kept = row["status"] == KEPT
        per_family[family]["tp" if kept and right else "fp" if kept else "fn" if right else "tn"] += 1

    def total(parts):
        c = {k: sum(p[k] for p in parts) for k in ("tp", "fp", "fn", "tn")}
        return {"right_kept": c["tp"], "wrong_kept": c["fp"], "right_dropped": c["fn"], "wrong_dropped": c["tn"],
                "precision": _share(c["tp"], c["tp"] + c["fp"]), "recall": _share(c["tp"], c["tp"] + c["fn"]),
                "base_rate": _share(c["tp"] + c["fn"], sum(c.values()))}

    return by_group(per_family, total)


def heldout_accuracy(scored: list[dict], models: list[str], truth: dict) -> dict:
    """Per model: accuracy on the held-out pairs (chosen is the correct response) with 95% intervals."""
    out = {}
    for model in models:
        per_family = {f: {"n": 0, "right": 0} for f in FAMILIES}
        for row in scored:
            p, family = p_of(row, model), family_of(row, truth)
            if p is None or family is None:
                continue
            per_family[family]["n"] += 1
            per_family[family]["right"] += p > 0.5

        def total(parts):
            n, right = sum(p["n"] for p in parts), sum(p["right"] for p in parts)
            return {"pairs": n, "accuracy": _share(right, n), "accuracy_95ci": wilson(right, n)}

        out[model] = by_group(per_family, total)
    return out


def judges_on_gold(judged_gold: list[dict], truth: dict) -> dict:
    """The judges' labels on D_gold (stored in the verified order: chosen is right) by world family."""
    per_family = {f: {"pairs": 0, "decided": 0, "right": 0, "both": 0, "inconsistent": 0} for f in FAMILIES}
    for row in judged_gold:
        family = family_of(row, truth)
        if family is None:
            continue
        f = per_family[family]
        f["pairs"] += 1
        f["decided"] += row["judge_label"] in ("chosen", "rejected")
        f["right"] += row["judge_label"] == "chosen"
        both, inconsistent = position_bias_counts(row.get("judge_votes"))
        f["both"] += both
        f["inconsistent"] += inconsistent

    def total(parts):
        c = {k: sum(p[k] for p in parts) for k in ("pairs", "decided", "right", "both", "inconsistent")}
        return {"pairs": c["pairs"], "coverage": _share(c["decided"], c["pairs"]),
                "accuracy": _share(c["right"], c["decided"]), "accuracy_95ci": wilson(c["right"], c["decided"]),
                "position_bias_rate": _share(c["inconsistent"], c["both"])}

    return by_group(per_family, total)


def gap_closed(heldout: dict, group: str = "learnable") -> dict | None:
    """How much of the raw -> ceiling gap on held-out accuracy the curated pool's RM closes."""
    try:
        raw, curated, ceiling = (heldout[m][group]["accuracy"] for m in ("raw", "curated", "ceiling"))
    except KeyError:
        return None
    if None in (raw, curated, ceiling):
        return None
    gap = ceiling - raw
    return {"group": group, "raw": raw, "curated": curated, "ceiling": ceiling, "gap": round(gap, 4),
            "closed": round((curated - raw) / gap, 4) if gap > 0 else None}
