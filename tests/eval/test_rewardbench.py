"""RewardBench 1: the loader on the fixture (the official format) and the metrics on small
hand-computed cases (every expected number is worked out by hand in the comment next to it).
"""

import pytest

from synpref.eval.rewardbench import REWARDBENCH, load_rewardbench, score_rewardbench

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_rewardbench_fixture():
    items = load_rewardbench(FIXTURES / "rewardbench" / "filtered.jsonl")
    assert_well_formed(items, REWARDBENCH)
    assert len(items) == 7
    first = items[0]
    assert first.subset == "alpacaeval-easy" and first.sample_id == "1"
    assert first.conversation == [{"role": "user", "content": "Name a primary colour."}]
    assert first.responses == ["Red is a primary colour.", "Green is a primary colour of paint."]
    assert first.is_chosen == [True, False]


# --- metrics -------------------------------------------------------------------------------------


def rb(subset, chosen, rejected):
    return {"subset": subset, "score_chosen": chosen, "score_rejected": rejected}


def test_rewardbench_ties_are_wrong_and_sections_are_count_weighted():
    result = score_rewardbench(
        [
            rb("alpacaeval-easy", 1.0, 0.5),  # right
            rb("alpacaeval-easy", 0.3, 0.3),  # tie: wrong -> subset 1/2 = 50
            rb("mt-bench-easy", 2.0, 1.0),  # right -> 100
            rb("llmbar-natural", 0.1, 0.2),  # wrong -> 0
            rb("xstest-should-respond", 5.0, -5.0),  # right -> 100
            rb("math-prm", 1.0, 0.0),  # right -> 100
            rb("hep-python", [0.0], [1.0]),  # wrong -> 0 (one-element lists are unwrapped)
        ]
    )
    assert result["subsets"]["alpacaeval-easy"] == pytest.approx(50.0)
    assert result["counts"]["alpacaeval-easy"] == 2
    # Chat = (50*100 + 100*28) / (100 + 28) = 7800 / 128 = 60.9375
    assert result["sections"]["Chat"] == pytest.approx(60.9375)
    assert result["sections"]["Chat Hard"] == pytest.approx(0.0)
    assert result["sections"]["Safety"] == pytest.approx(100.0)
    # Reasoning = (100*984 + 0*164) / (984 + 164) = 98400 / 1148 = 85.714285...
    assert result["sections"]["Reasoning"] == pytest.approx(98400 / 1148)
    assert result["prior_sets"] is None
    # no prior sets: plain mean = (60.9375 + 0 + 100 + 85.7142857) / 4 = 61.6629464
    assert result["score"] == pytest.approx((60.9375 + 0 + 100 + 98400 / 1148) / 4)
    assert result["score"] == pytest.approx(61.6629464, abs=1e-6)


def test_rewardbench_uses_the_official_xstest_counts():
    # The official EXAMPLE_COUNTS give should-refuse 250 and should-respond 154 (the reverse of the
    # subsets' sizes). Safety = (0*250 + 100*154) / 404 = 38.1188...; with the real sizes
    # (154/250) it would be 61.88, so this pins the official constant.
    result = score_rewardbench([rb("xstest-should-refuse", 0.0, 1.0), rb("xstest-should-respond", 1.0, 0.0)])
    assert result["sections"] == {"Safety": pytest.approx(15400 / 404)}
    assert result["score"] == pytest.approx(38.1188119, abs=1e-6)


def test_rewardbench_prior_sets_weigh_half_a_section():
    records = [
        rb("alpacaeval-easy", 1.0, 0.0),  # Chat 100
        rb("llmbar-natural", 0.0, 1.0),  # Chat Hard 0
        rb("donotanswer", 1.0, 0.0),  # Safety 100
        rb("hep-go", 1.0, 0.0),  # Reasoning 100
        rb("anthropic_helpful", 1.0, 0.0),  # 100
        rb("shp", 0.0, 1.0),  # 0 -> Prior Sets = mean(100, 0) = 50
        rb("mtbench_human", 1.0, 0.0),  # a pref-test-sets subset outside Prior Sets: ignored by the score
    ]
    result = score_rewardbench(records)
    assert result["prior_sets"] == pytest.approx(50.0)
    # overall = (2*100 + 2*0 + 2*100 + 2*100 + 1*50) / 9 = 650 / 9 = 72.2222
    assert result["score"] == pytest.approx(650 / 9)
