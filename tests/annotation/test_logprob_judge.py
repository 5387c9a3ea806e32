"""The logprob judge's arithmetic: prefix/token ids, slot log-probabilities, score, label, calibration."""

import math

import pytest

from synpref.annotation import logprob_judge as jl
from synpref.record.counts import wilson


class DigitTokenizer:
    """Encodes like SmolLM2: the space before a number is a token of its own."""

    def encode(self, text, add_special_tokens=False):
        out = []
        for i, word in enumerate(text.split(" ")):
            out += ([" "] if i else []) + ([word] if word else [])
        return [sum(map(ord, t)) * 31 + len(t) for t in out]


def test_answer_prefix_ends_where_the_number_token_starts():
    prefix, ids = jl.answer_prefix(DigitTokenizer())
    assert prefix == jl.ANSWER_LEAD + " " and len(set(ids)) == 2


def test_slot_logprobs_reads_both_numbers_and_bounds_a_missing_one():
    lp = [{33: {"logprob": -0.5}, 34: {"logprob": -1.5}, 35: {"logprob": -3.0}}]
    assert jl.slot_logprobs(lp, [33, 34]) == ((-0.5, -1.5), None)
    only_one = [{33: {"logprob": -0.1}, 40: {"logprob": -4.0}}]
    assert jl.slot_logprobs(only_one, [33, 34]) == ((-0.1, -4.0), None)  # the floor bounds the missing one
    assert jl.slot_logprobs(None, [33, 34])[1] == "no_logprobs"
    assert jl.slot_logprobs([{40: {"logprob": -1.0}}], [33, 34])[1] == "numbers_not_in_top_logprobs"


def test_a_constant_position_preference_cancels():
    bias = 2.0  # the judge adds 2 nats to whatever sits in slot 1
    quality = 0.3  # and prefers the chosen response by 0.3 nats
    original = jl.order_vote(slot1=bias + quality, slot2=0.0, chosen_first=True)
    swapped = jl.order_vote(slot1=bias, slot2=quality, chosen_first=False)
    assert original["verdict"] == "chosen" and swapped["verdict"] == "rejected"  # position-bound per order
    assert jl.judge_score([original, swapped]) == pytest.approx(quality)
    # the same pair with chosen and rejected swapped gets exactly the opposite score
    flipped = [jl.order_vote(bias, quality + 0.0, True), jl.order_vote(bias + quality, 0.0, False)]
    assert jl.judge_score(flipped) == pytest.approx(-quality)


def test_label_abstains_under_the_threshold():
    assert jl.label(0.3, 0.2) == "chosen" and jl.label(-0.3, 0.2) == "rejected"
    assert jl.label(0.1, 0.2) == "tie" and jl.label(None, 0.0) == "tie" and jl.label(0.0, 0.0) == "tie"
    assert jl.sigmoid(0.0) == 0.5 and jl.sigmoid(-800) == pytest.approx(0.0) and jl.sigmoid(800) == 1.0


def test_threshold_for_precision_is_the_smallest_that_reaches_the_target():
    scores = [2.0, 1.5, -1.0, 0.8, -0.5, 0.4, 0.3]  # right when > 0
    assert jl.threshold_for_precision(scores, 1.0) == 1.5  # {2.0, 1.5} only
    assert jl.threshold_for_precision(scores, 0.75) == 0.8  # {2.0, 1.5, -1.0, 0.8}: 3 of 4
    assert jl.threshold_for_precision(scores, 0.7) == 0.3  # all 7: 5 of 7 = 0.714
    assert jl.threshold_for_precision([-1.0, -2.0], 0.5) is None


def test_expected_calibration_error_by_hand():
    # bin [0.9, 1.0): confidences 0.95 and 0.95, one right -> |0.5 - 0.95| = 0.45, share 2/3
    # bin [0.6, 0.7): confidence 0.6, right -> |1 - 0.6| = 0.4, share 1/3
    ece = jl.expected_calibration_error([0.95, 0.05, 0.6], [True, True, True])
    assert ece == pytest.approx(2 / 3 * 0.45 + 1 / 3 * 0.4, abs=1e-4)
    assert jl.expected_calibration_error([], []) is None


def test_calibration_figures_per_family():
    def row(family, label, score):
        votes = [{"judge": "j", "sample": 0, "position_consistent": score is not None and abs(score) > 1}]
        return {"task_category": family, "judge_label": label, "judge_score": score, "judge_votes": votes}

    rows = [row("math", "chosen", 2.0), row("math", "rejected", -1.5), row("math", "tie", 0.1),
            row("chat", "chosen", 0.5)]
    fig = jl.calibration(rows, threshold=0.2)
    assert fig["pairs"] == 4 and fig["decided"] == 3 and fig["coverage"] == 0.75
    assert fig["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert fig["per_family"]["math"] == {"pairs": 3, "decided": 2, "coverage": 0.6667, "accuracy": 0.5,
                                         "accuracy_95ci": wilson(1, 2)}
    assert fig["position_bias_rate"] == 0.5
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi and math.isclose(lo, 0.4902, abs_tol=1e-3)
