"""Verdicts -> D_gold: the majority per pair, agreement between annotators, and the union with an
earlier D_gold. Gold rows are stored in the verified order: a pair people flipped is turned round
(synpref.record.ops.flip), an undecidable pair is dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

from synpref.record.ops import flip, pair_key, record_decision
from synpref.record.schema import DROPPED, KEPT
from synpref.verification.verdicts import CHOSEN, FLIPPED, UNDECIDABLE, VERDICTS

STAGE = "verify"


def is_tie(verdicts: list[str]) -> bool:
    ranked = Counter(verdicts).most_common(2)
    return len(ranked) == 2 and ranked[0][1] == ranked[1][1]


def majority_verdict(verdicts: list[str]) -> str:
    """The most frequent verdict; a tie for first place is undecidable."""
    return UNDECIDABLE if not verdicts or is_tie(verdicts) else Counter(verdicts).most_common(1)[0][0]


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two annotators' verdicts on the same pairs; None when chance agreement is 1."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def agreement_stats(votes: dict[str, dict[str, str]]) -> dict:
    """votes: pair_id -> annotator -> verdict. Pairwise percent agreement over pairs with >= 2
    annotators, and Cohen's kappa of the two most frequent annotators on the pairs they share."""
    multi = {pid: v for pid, v in votes.items() if len(v) >= 2}
    compared = agreeing = 0
    for by_annotator in multi.values():
        for x, y in combinations(by_annotator.values(), 2):
            compared += 1
            agreeing += x == y
    frequency = Counter(a for by_annotator in votes.values() for a in by_annotator)
    top = sorted(frequency, key=lambda a: (-frequency[a], a))[:2]
    kappa = None
    if len(top) == 2:
        shared = [pid for pid, v in votes.items() if top[0] in v and top[1] in v]
        a, b = [votes[p][top[0]] for p in shared], [votes[p][top[1]] for p in shared]
        kappa = {"annotators": top, "shared_pairs": len(shared), "cohen_kappa": cohen_kappa(a, b),
                 "percent_agreement": (sum(x == y for x, y in zip(a, b)) / len(shared)) if shared else None}
    return {"pairs_with_2plus_annotators": len(multi), "annotator_pairs_compared": compared,
            "pairwise_agreement": agreeing / compared if compared else None, "kappa_top_two": kappa}


HUMAN_CHOSE = "human verdict: chosen"
HUMAN_FLIPPED = "human verdict: flipped"


def decided_row(row: dict, verdict: str) -> dict:
    """The PAIR_SCHEMA row for a majority verdict: a gold row (chosen as is, flipped turned round) or
    a dropped one (undecidable)."""
    if verdict == UNDECIDABLE:
        new = record_decision(dict(row), stage=STAGE, status=DROPPED, reason=UNDECIDABLE)
        new.update(human_label=UNDECIDABLE, is_gold=False)
        return new
    if verdict == FLIPPED:
        new = flip(row, stage=STAGE, reason=HUMAN_FLIPPED)
    else:
        new = record_decision(dict(row), stage=STAGE, status=KEPT, reason=HUMAN_CHOSE)
    new.update(human_label=verdict, is_gold=True)
    return new


def merge_verdicts(rows: list[dict], verdicts: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """Exported rows + verdicts -> (gold rows, dropped undecidable rows, stats). Rows with no verdict
    are in neither list (counted as not yet verified); verdicts for pairs not among `rows` are counted."""
    known = {row["pair_id"] for row in rows}
    votes: dict[str, dict[str, str]] = defaultdict(dict)
    unknown = Counter()
    per_annotator: dict[str, Counter] = defaultdict(Counter)
    for v in verdicts:
        if v["pair_id"] not in known:
            unknown[v["pair_id"]] += 1
            continue
        votes[v["pair_id"]][v["annotator"]] = v["verdict"]
    for by_annotator in votes.values():
        for annotator, verdict in by_annotator.items():
            per_annotator[annotator][verdict] += 1
    gold, dropped, outcome = [], [], Counter()
    ties = 0
    judge = Counter()
    for row in rows:
        by_annotator = votes.get(row["pair_id"])
        if not by_annotator:
            outcome["not_yet_verified"] += 1
            continue
        verdict = majority_verdict(list(by_annotator.values()))
        ties += is_tie(list(by_annotator.values()))
        outcome[verdict] += 1
        (dropped if verdict == UNDECIDABLE else gold).append(decided_row(row, verdict))
        label = row.get("judge_label")
        if verdict != UNDECIDABLE:
            if label in ("chosen", "rejected"):
                judge["compared"] += 1
                judge["agree"] += (label == "chosen") == (verdict == CHOSEN)
            else:
                judge["tie" if label == "tie" else "no_judge_label"] += 1
    decided = outcome[CHOSEN] + outcome[FLIPPED]
    stats = {
        "pairs_exported": len(rows), "verdicts_read": len(verdicts),
        "pairs_verified": outcome[CHOSEN] + outcome[FLIPPED] + outcome[UNDECIDABLE],
        CHOSEN: outcome[CHOSEN], FLIPPED: outcome[FLIPPED], UNDECIDABLE: outcome[UNDECIDABLE],
        "not_yet_verified": outcome["not_yet_verified"], "majority_ties_undecidable": ties,
        "verdicts_for_unknown_pairs": sum(unknown.values()), "unknown_pair_ids": sorted(unknown)[:5],
        "annotators": {a: {**{v: c[v] for v in VERDICTS}, "total": sum(c.values())}
                       for a, c in sorted(per_annotator.items())},
        "agreement": agreement_stats(votes),
        "original_label_correct": outcome[CHOSEN] / decided if decided else None,  # human vs data
        "human_vs_judge_agreement": judge["agree"] / judge["compared"] if judge["compared"] else None,
        "human_vs_judge": {"compared": judge["compared"], "agree": judge["agree"],
                           "agreement": judge["agree"] / judge["compared"] if judge["compared"] else None,
                           "judge_tie": judge["tie"], "no_judge_label": judge["no_judge_label"]},
    }
    return gold, dropped, stats


def merge_into_existing(existing: list[dict], gold: list[dict],
                        dropped: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """The union of an earlier D_gold (its gold rows and dropped undecidables) with new outcomes. A pair
    already there (matched regardless of order) keeps its earlier outcome unless it has a new one,
    which replaces it (re-verified)."""
    new = {pair_key(r): r for r in gold + dropped}
    carried_gold, carried_dropped, replaced = [], [], {}
    for row in existing:
        key = pair_key(row)
        if key in new:
            replaced[key] = row
        elif (row.get("status") or KEPT) == KEPT:
            carried_gold.append(row)
        else:
            carried_dropped.append(row)
    changed = sum(1 for key, old in replaced.items()
                  if (old.get("status") or KEPT, old["pair_id"]) != (new[key]["status"], new[key]["pair_id"]))
    counts = {
        "existing_rows": len(existing), "existing_gold_carried": len(carried_gold),
        "existing_dropped_carried": len(carried_dropped), "re_verified": len(replaced),
        "re_verified_changed": changed,
        "re_verified_gold": sum(1 for k in replaced if new[k]["status"] == KEPT),
        "re_verified_undecidable": sum(1 for k in replaced if new[k]["status"] != KEPT),
        "gold_added": sum(1 for r in gold if pair_key(r) not in replaced),
        "undecidable_added": sum(1 for r in dropped if pair_key(r) not in replaced),
    }
    return carried_gold + gold, carried_dropped + dropped, counts
