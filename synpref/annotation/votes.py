"""One pair's judge answers -> its label (judge_votes, judge_label, judge_agreement, judge_score).

Per judge:
  sampled  self-consistency: the majority of its samples. A sample asked in both orders whose two
           verdicts disagree is position-inconsistent: marked on its votes and left out of the count.
  logprob  one vote per order with the log-probabilities of the chosen's and the rejected's slot;
           score = mean over orders of (log p chosen - log p rejected), P_judge = sigmoid(score), the
           label chosen / rejected when |score| >= threshold, else tie (an abstention). Each order's
           own argmax is its verdict, which is what the position-bias rate counts.
Across judges (`combine`): `majority` of the judges' labels (a tie abstains), or `mean_score`, the
mean of the logprob judges' scores against the threshold. judge_agreement is the share of counted
votes (sampled samples, logprob judges) agreeing with the result; judge_score the logprob judges' mean.
"""

from __future__ import annotations

from synpref.annotation.judging import ORIGINAL, majority
from synpref.annotation.logprob_judge import judge_score, label, order_vote
from synpref.record.ops import sigmoid

COMBINE = ("majority", "mean_score")


def logprob_vote(judge: str, order: str, slots: tuple[float, float]) -> dict:
    """A logprob judge's answer in one order (slot 1 and slot 2 log-probabilities) as a vote."""
    vote = order_vote(slots[0], slots[1], chosen_first=order == ORIGINAL)
    return {"judge": judge, "sample": 0, "order": order, "rationale": None, **vote}


def aggregate_votes(votes: list[dict], *, threshold: float, combine: str = "majority") -> dict:
    """Votes of one pair (sampled: {judge, sample, order, verdict, rationale}; logprob: the same with
    logprob_chosen / logprob_rejected) -> the schema's label fields and counts for the stage summary."""
    by_sample: dict[tuple, list[dict]] = {}
    for vote in votes:
        by_sample.setdefault((vote["judge"], vote["sample"]), []).append(vote)
    judge_labels: dict[str, str] = {}
    sampled: dict[str, list[str]] = {}
    scores: dict[str, float] = {}
    asked_both = inconsistent = 0
    for (judge, _), asked in sorted(by_sample.items()):
        consistent = None if len(asked) == 1 else len({v["verdict"] for v in asked}) == 1
        for v in asked:
            v["position_consistent"] = consistent
        if consistent is not None:
            asked_both += 1
            inconsistent += not consistent
        if asked[0].get("logprob_chosen") is not None:  # a logprob judge: its score over both orders
            score = judge_score(asked)
            scores[judge] = score
            judge_labels[judge] = label(score, threshold)
            for v in asked:
                v.update(score=score, p_judge=None if score is None else sigmoid(score))
        elif consistent is not False:
            sampled.setdefault(judge, []).append(asked[0]["verdict"])
    for judge, verdicts in sampled.items():
        judge_labels[judge] = majority(verdicts)
    for judge in {v["judge"] for v in votes} - set(judge_labels):  # every sample inconsistent
        judge_labels[judge] = "tie"

    mean_score = sum(scores.values()) / len(scores) if scores else None
    if combine == "mean_score":
        result = label(mean_score, threshold)
    else:
        result = majority([judge_labels[j] for j in sorted(judge_labels)])
    counted = [v for j, vs in sampled.items() for v in vs] + [judge_labels[j] for j in scores]
    agreement = sum(v == result for v in counted) / len(counted) if counted else 0.0
    ordered = sorted(votes, key=lambda v: (v["judge"], v["sample"], v["order"] != ORIGINAL))
    return {"judge_votes": ordered, "judge_label": result, "judge_agreement": agreement,
            "judge_score": mean_score, "samples_asked_both_orders": asked_both,
            "samples_position_inconsistent": inconsistent}
