"""Position-debiased judging from next-token log-probabilities (a judge with `mode: logprob`).

The judge is asked each candidate order once. Its answer starts with a fixed prefix ("The better
response is Candidate "), so the next token is the candidate number, and the engine returns the
log-probabilities of the two number tokens (greedy, one token, `allowed_token_ids` the two numbers,
the raw log-probabilities of vLLM's `logprobs`).

For one judge and one pair:
    score   = mean over both orders of  log p(the chosen's slot) - log p(the rejected's slot)
    P_judge = sigmoid(score)
    label   = chosen if score >= threshold, rejected if score <= -threshold, else tie (an abstention)
A constant preference for one position adds the same amount to both orders' slot-1 log-probability,
and so cancels in the mean. Several judges combine by the mean of their scores, or by a majority of
their labels (judging.combine).

`calibration` measures the labels against human-verified pairs (D_gold, stored in the verified
order, so the chosen response is the better one): accuracy per task family, coverage at the
threshold, expected calibration error of P_judge, and `threshold_for_precision` picks the smallest
threshold that reaches a target precision on them.
"""

from __future__ import annotations

import math
from collections import defaultdict

from synpref.annotation.judging import position_bias_counts
from synpref.record.counts import wilson
from synpref.record.ops import sigmoid

ANSWER_LEAD = "The better response is Candidate"
NUMBERS = ("1", "2")


def answer_prefix(tokenizer) -> tuple[str, list[int]]:
    """(the assistant text the judge continues, [token id of "1", token id of "2"]) for a tokenizer.

    Tokenizers differ on "Candidate 1": some give "... ␣ 1", others "... ␣1". The prefix ends where
    the number's own token starts, so the next token is exactly the number."""
    for prefix in (ANSWER_LEAD + " ", ANSWER_LEAD):
        head = tokenizer.encode(prefix, add_special_tokens=False)
        ids = []
        for number in NUMBERS:
            full = tokenizer.encode(f"{ANSWER_LEAD} {number}", add_special_tokens=False)
            if full[:len(head)] == head and len(full) == len(head) + 1:
                ids.append(full[-1])
        if len(ids) == 2 and ids[0] != ids[1]:
            return prefix, ids
    raise ValueError(f"the tokenizer does not end '{ANSWER_LEAD} 1' with one token for the number; "
                     "the logprob judge needs it (use mode: sampled for this model)")


def sampling_params(token_ids: list[int], *, top_logprobs: int, seed: int) -> dict:
    return {"temperature": 0.0, "max_tokens": 1, "seed": int(seed), "logprobs": int(top_logprobs),
            "allowed_token_ids": [int(t) for t in token_ids]}


def slot_logprobs(logprobs, token_ids: list[int]) -> tuple[tuple[float, float] | None, str | None]:
    """The engine's `logprobs` (per generated token: {token id: {"logprob", ...}}) -> (log p(slot 1),
    log p(slot 2)), or (None, why). A number outside the returned top-k gets the smallest logprob
    returned, an upper bound that can only shrink |score|."""
    if logprobs is None or len(logprobs) == 0 or not logprobs[0]:
        return None, "no_logprobs"
    first = {int(k): float(v["logprob"] if isinstance(v, dict) else v) for k, v in dict(logprobs[0]).items()
             if v is not None}
    if not first:
        return None, "no_logprobs"
    if not any(t in first for t in token_ids):
        return None, "numbers_not_in_top_logprobs"
    floor = min(first.values())
    values = tuple(first.get(t, floor) for t in token_ids)
    if not all(math.isfinite(v) for v in values):
        return None, "non_finite_logprob"
    return (values[0], values[1]), None


def order_vote(slot1: float, slot2: float, chosen_first: bool) -> dict:
    """One order's answer -> the vote's log-probabilities of the chosen's and the rejected's slot, and
    the verdict that order alone gives (its argmax; what the position-bias rate counts)."""
    lp_chosen, lp_rejected = (slot1, slot2) if chosen_first else (slot2, slot1)
    return {"logprob_chosen": lp_chosen, "logprob_rejected": lp_rejected,
            "verdict": "chosen" if lp_chosen >= lp_rejected else "rejected"}


def judge_score(votes: list[dict]) -> float | None:
    """Mean over a judge's orders of log p(chosen's slot) - log p(rejected's slot)."""
    diffs = [v["logprob_chosen"] - v["logprob_rejected"] for v in votes if v.get("logprob_chosen") is not None]
    return sum(diffs) / len(diffs) if diffs else None


def label(score: float | None, threshold: float) -> str:
    if score is None or abs(score) < threshold or score == 0:
        return "tie"
    return "chosen" if score > 0 else "rejected"


def expected_calibration_error(p_chosen: list[float], correct_is_chosen: list[bool], bins: int = 10) -> float | None:
    """ECE of a binary prediction: bin by confidence max(p, 1-p); sum over bins of the bin's share
    times |accuracy - mean confidence|."""
    if not p_chosen:
        return None
    sums = defaultdict(lambda: [0, 0.0, 0])  # bin -> [n, confidence sum, right]
    for p, truth in zip(p_chosen, correct_is_chosen):
        confidence = max(p, 1 - p)
        b = min(int((confidence - 0.5) * 2 * bins), bins - 1)
        s = sums[b]
        s[0] += 1
        s[1] += confidence
        s[2] += (p >= 0.5) == truth
    n = len(p_chosen)
    return round(sum(c / n * abs(right / c - conf / c) for c, conf, right in sums.values()), 4)


def threshold_for_precision(scores: list[float], target: float) -> float | None:
    """The smallest |score| threshold at which the decided verified pairs (|score| >= it) reach the
    target precision (scores of verified pairs: > 0 is right), or None when no threshold does."""
    ranked = sorted((abs(s), s > 0) for s in scores if s is not None and s != 0)
    right = sum(r for _, r in ranked)
    for i, (magnitude, is_right) in enumerate(ranked):  # threshold = magnitude keeps ranked[i:]
        if right / (len(ranked) - i) >= target:
            return round(magnitude, 6)
        right -= is_right
    return None


def calibration(rows: list[dict], *, threshold: float, group_of=lambda r: r.get("task_category")) -> dict:
    """Judge figures on verified pairs (each row: judge_label, judge_score, judge_votes, and the
    family): accuracy on the decided pairs (overall and per family, with 95% intervals), coverage
    (share decided), ECE of P_judge where the judges give one, and the position-bias rate."""
    families: dict[str, list] = defaultdict(list)
    p_values, truths, both, inconsistent = [], [], 0, 0
    for row in rows:
        families[str(group_of(row))].append(row["judge_label"])
        if row.get("judge_score") is not None:
            p_values.append(sigmoid(row["judge_score"]))
            truths.append(True)  # verified order: the chosen response is the better one
        asked_both, disagreed = position_bias_counts(row.get("judge_votes"))
        both += asked_both
        inconsistent += disagreed

    def figures(labels: list[str]) -> dict:
        decided = [x for x in labels if x in ("chosen", "rejected")]
        right = sum(x == "chosen" for x in decided)
        return {"pairs": len(labels), "decided": len(decided),
                "coverage": round(len(decided) / len(labels), 4) if labels else None,
                "accuracy": round(right / len(decided), 4) if decided else None,
                "accuracy_95ci": wilson(right, len(decided))}

    ece = expected_calibration_error(p_values, truths)
    return {"threshold": threshold, **figures([x for labels in families.values() for x in labels]),
            "per_family": {f: figures(labels) for f, labels in sorted(families.items())},
            "ece": ece, "position_bias_rate": round(inconsistent / both, 4) if both else None}
