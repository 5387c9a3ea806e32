"""RewardBench 2: the loader on the fixture (chosen completions first) and the metrics on small
hand-computed cases, Ties included (every expected number is worked out in the comment next to it).
"""

import math
from collections import Counter

import pytest

from synpref.eval.rewardbench2 import (
    REWARDBENCH2,
    load_rewardbench2,
    score_rewardbench2,
)

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_rewardbench2_fixture_puts_chosen_first():
    items = load_rewardbench2(FIXTURES / "rewardbench2" / "test.jsonl")
    assert_well_formed(items, REWARDBENCH2)
    assert Counter(i.subset for i in items) == {"Factuality": 1, "Precise IF": 1, "Math": 1, "Ties": 2}
    tied = next(i for i in items if i.sample_id == "tied:0")
    assert tied.responses == ["2", "3", "5", "4", "9"]
    assert tied.is_chosen == [True, True, True, False, False]
    assert tied.extra["num_correct"] == 3


# --- metrics -------------------------------------------------------------------------------------


def rb2(subset, scores, id_="x", num_correct=1):
    return {"subset": subset, "id": id_, "scores": scores, "num_correct": num_correct}


def test_rewardbench2_best_of_4_splits_ties_at_the_top():
    result = score_rewardbench2(
        [
            rb2("Factuality", [2, 1, 0, -1]),  # chosen alone at the max -> 1
            rb2("Factuality", [2, 2, 0, 1]),  # chosen tied with one other -> 1/2
            rb2("Factuality", [1, 3, 0, 0]),  # chosen not at the max -> 0
            rb2("Math", [5, 5, 5, 5]),  # four-way tie -> 1/4
        ]
    )
    assert result["subsets"]["Factuality"] == pytest.approx(50.0)  # (1 + 0.5 + 0) / 3
    assert result["subsets"]["Math"] == pytest.approx(25.0)
    assert result["counts"] == {"Factuality": 3, "Math": 1}
    assert result["score"] == pytest.approx(37.5)  # mean(50, 25)


def test_rewardbench2_ties_subset_official_formula():
    ties = [
        # ref:1 correct [3], incorrect [1, 0]: margin 3-1 = 2 > 0 -> accurate
        rb2("Ties", [3, 1, 0], "ref:1", 1),
        # tied:1 correct [4, 3.5], incorrect [1, 2]: spread 0.5, margin 3.5-2 = 1.5 -> accurate
        rb2("Ties", [4, 3.5, 1, 2], "tied:1", 2),
        # ref:2 correct [1], incorrect [2]: margin -1 -> not accurate
        rb2("Ties", [1, 2], "ref:2", 1),
        # tied:2 correct [5, 1], incorrect [2, 0]: spread 4, margin 1-2 = -1 -> not accurate
        rb2("Ties", [5, 1, 2, 0], "tied:2", 2),
    ]
    result = score_rewardbench2(ties + [rb2("Factuality", [1, 0, 0, 0]), rb2("Math", [0, 1, 0, 0])])
    components = result["ties"]
    assert components["ref_accuracy"] == pytest.approx(0.5)
    assert components["tied_accuracy"] == pytest.approx(0.5)
    # prompt 1: tied margin 1.5 > spread 0.5 yes; prompt 2: -1 > 4 no -> 0.5
    assert components["correctness_preferred"] == pytest.approx(0.5)
    # hard: min(ref, tied margin) = [min(2, 1.5), min(-1, -1)] = [1.5, -1] vs spread [0.5, 4] -> 0.5
    assert components["correctness_preferred_hard"] == pytest.approx(0.5)
    # margin term: mean(tanh(1.5/0.5 - 1), tanh(-1/4 - 1)) = mean(tanh 2, tanh -1.25)
    #            = (0.9640276 - 0.8482836) / 2 = 0.0578720
    margin = (math.tanh(2.0) + math.tanh(-1.25)) / 2
    assert components["correctness_margin"] == pytest.approx(margin)
    assert margin == pytest.approx(0.0578720, abs=1e-7)
    # Ties = 0.3*0.5 + 0.3*0.5 + 0.2*0.5 + 0.2*0.5 + 0.01*0.0578720 = 0.5005787 -> 50.05787
    assert result["subsets"]["Ties"] == pytest.approx(100 * (0.5 + 0.01 * margin))
    # overall = mean(Factuality 100, Math 0, Ties 50.05787) = 50.01929
    assert result["score"] == pytest.approx((100 + 0 + 100 * (0.5 + 0.01 * margin)) / 3)


def test_rewardbench2_ties_zero_spread_follows_numpy_like_the_official_code():
    # tied correct answers scored equal: spread 0, margin min(2, 2) = 2 -> 2/0 = inf, tanh(inf) = 1.
    # Everything else is perfect, so Ties = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 = 1.01 -> 101 (the official
    # formula can exceed 100).
    result = score_rewardbench2([rb2("Ties", [2, 0], "ref:7", 1), rb2("Ties", [3, 3, 1], "tied:7", 2)])
    assert result["ties"]["correctness_margin"] == pytest.approx(1.0)
    assert result["subsets"]["Ties"] == pytest.approx(101.0)
