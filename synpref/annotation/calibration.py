"""The judges measured on D_gold, where the right label is known (gold pairs are stored in the
verified order: chosen is the better response).

jobs/annotate.py asks the judges about every D_gold pair beside the pairs it labels (each gold pair
shown every other gold pair as an example, never itself). From those answers: accuracy per task
family with 95% intervals, coverage at the threshold, the expected calibration error of P_judge and
the position-bias rate (synpref.annotation.logprob_judge.calibration); and, with a target precision,
the smallest logprob threshold whose decided gold labels reach it, which then labels the pool.
"""

from __future__ import annotations

from collections import defaultdict

from synpref.annotation.logprob_judge import calibration, threshold_for_precision
from synpref.annotation.requests import CALIBRATION, KEY, answer_votes
from synpref.annotation.votes import aggregate_votes


def gold_answers(answers: list[dict]) -> dict[str, list[dict]]:
    """Answered calibration questions grouped by gold pair."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for answer in answers:
        if answer[KEY].startswith(CALIBRATION):
            by_pair[answer[KEY]].append(answer)
    return by_pair


def labelled_gold(by_pair: dict[str, list[dict]], pairs: dict[str, dict], *, threshold: float,
                  combine: str) -> tuple[list[dict], int]:
    """(gold pairs with their judge fields at this threshold, pairs with a failed question); `pairs`:
    key -> the gold pair as the judges saw it."""
    rows, failed = [], 0
    for key, answers in by_pair.items():
        if any(a["error"] is not None for a in answers):
            failed += 1
            continue
        pair = dict(pairs[key])
        pair.update(aggregate_votes(answer_votes(answers), threshold=threshold, combine=combine))
        rows.append(pair)
    return rows, failed


def calibrate(answers: list[dict], pairs: dict[str, dict], *, threshold: float, combine: str,
              target_precision: float | None) -> tuple[float, dict, list[dict]]:
    """(the threshold to label with, the judges' figures on D_gold, the gold pairs as judged);
    `pairs`: key -> the gold pair asked about."""
    by_pair = gold_answers(answers)
    rows, failed = labelled_gold(by_pair, pairs, threshold=threshold, combine=combine)
    chosen, how = threshold, "config"
    scores = [r["judge_score"] for r in rows if r.get("judge_score") is not None]
    if target_precision is not None and scores:
        found = threshold_for_precision(scores, target_precision)
        if found is not None:
            chosen, how = found, f"the smallest reaching precision {target_precision} on D_gold"
            rows, failed = labelled_gold(by_pair, pairs, threshold=chosen, combine=combine)
        else:
            how = f"config: no threshold reaches precision {target_precision} on D_gold"
    figures = calibration(rows, threshold=chosen)
    figures.update(threshold_from=how, gold_pairs=len(by_pair), gold_pairs_failed=failed)
    return chosen, figures, rows


def format_calibration(figures: dict) -> str:
    ci = figures["accuracy_95ci"]
    lines = [f"judges on D_gold: accuracy {figures['accuracy']} {list(ci) if ci else ''} on {figures['decided']} "
             f"decided of {figures['pairs']} (coverage {figures['coverage']}), ECE {figures['ece']}, position-bias "
             f"rate {figures['position_bias_rate']}; threshold {figures['threshold']} ({figures['threshold_from']})"]
    for family, f in figures["per_family"].items():
        lines.append(f"  {family:<24} accuracy {f['accuracy']} on {f['decided']} of {f['pairs']} (coverage {f['coverage']})")
    return "\n".join(lines)
