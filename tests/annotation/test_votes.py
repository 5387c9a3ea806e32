"""One pair's judge answers -> its label (synpref.annotation.votes): sampled and logprob judges."""

import pytest

from synpref.annotation.judging import ORIGINAL, SWAPPED, majority
from synpref.annotation.votes import aggregate_votes, logprob_vote


def vote(judge, sample, order, verdict):
    return {"judge": judge, "sample": sample, "order": order, "verdict": verdict, "rationale": None}


def test_aggregation_self_consistency_then_across_judges_and_position_bias():
    votes = [
        vote("a", 0, ORIGINAL, "chosen"), vote("a", 0, SWAPPED, "chosen"),      # consistent: chosen
        vote("a", 1, ORIGINAL, "chosen"), vote("a", 1, SWAPPED, "rejected"),    # position-inconsistent
        vote("a", 2, ORIGINAL, "rejected"), vote("a", 2, SWAPPED, "rejected"),  # consistent: rejected
        vote("b", 0, ORIGINAL, "chosen"),                                        # one order only
        vote("c", 0, SWAPPED, "chosen"),
    ]
    result = aggregate_votes(votes, threshold=0.5)
    # judge a: 1 chosen vs 1 rejected -> tie; b: chosen; c: chosen -> chosen
    assert result["judge_label"] == "chosen"
    assert result["samples_asked_both_orders"] == 3 and result["samples_position_inconsistent"] == 1
    assert result["judge_agreement"] == pytest.approx(3 / 4)  # counted samples: a0, a2, b0, c0
    flags = {(v["judge"], v["sample"], v["order"]): v["position_consistent"] for v in result["judge_votes"]}
    assert flags[("a", 1, ORIGINAL)] is False and flags[("a", 0, SWAPPED)] is True and flags[("b", 0, ORIGINAL)] is None
    assert majority([]) == "tie" and majority(["chosen", "rejected"]) == "tie"




def test_a_logprob_judge_scores_both_orders_and_abstains_below_the_threshold():
    # slot 1 is favoured by 2 nats whatever sits there; the chosen response by 0.8 on top
    votes = [logprob_vote("lp", ORIGINAL, (-0.1, -2.9)), logprob_vote("lp", SWAPPED, (-0.5, -1.7))]
    result = aggregate_votes(votes, threshold=0.5)
    assert result["judge_score"] == pytest.approx((2.8 + -1.2) / 2)
    assert result["judge_label"] == "chosen" and result["samples_position_inconsistent"] == 1
    assert all(v["score"] == pytest.approx(0.8) and 0.5 < v["p_judge"] < 1 for v in result["judge_votes"])
    assert aggregate_votes(votes, threshold=1.0)["judge_label"] == "tie"  # |0.8| < 1: an abstention
    swapped_order = [logprob_vote("lp", SWAPPED, (-0.1, -2.9)), logprob_vote("lp", ORIGINAL, (-0.5, -1.7))]
    assert aggregate_votes(swapped_order, threshold=0.5)["judge_label"] == "rejected"


def test_judges_combine_by_majority_or_by_mean_score():
    strong = [logprob_vote("a", ORIGINAL, (-0.1, -3.1)), logprob_vote("a", SWAPPED, (-3.1, -0.1))]  # +3.0
    weak_against = [logprob_vote("b", ORIGINAL, (-1.0, -0.4)), logprob_vote("b", SWAPPED, (-0.4, -1.0))]  # -0.6
    also_against = [logprob_vote("c", ORIGINAL, (-1.0, -0.4)), logprob_vote("c", SWAPPED, (-0.4, -1.0))]  # -0.6
    votes = strong + weak_against + also_against
    assert aggregate_votes([dict(v) for v in votes], threshold=0.5)["judge_label"] == "rejected"  # 2 judges of 3
    by_mean = aggregate_votes([dict(v) for v in votes], threshold=0.5, combine="mean_score")
    assert by_mean["judge_label"] == "chosen" and by_mean["judge_score"] == pytest.approx(0.6)
