"""From items and rewards to every benchmark's metrics: all seven fixtures end to end with an oracle
and an anti-oracle reward, and how score_items aligns rewards with items.
"""

import pytest

from synpref.eval.harness import score_items
from synpref.eval.headline import PAPER_BENCHMARKS, paper_average
from synpref.eval.items import EvalItem
from synpref.eval.judgebench import load_judgebench
from synpref.eval.ppe import load_ppe_correctness, load_ppe_preference
from synpref.eval.rewardbench import load_rewardbench
from synpref.eval.rewardbench2 import load_rewardbench2
from synpref.eval.rm_bench import load_rm_bench
from synpref.eval.rmb import load_rmb

from .helpers import FIXTURES, oracle_scores


def load_all_fixtures() -> list[EvalItem]:
    return (
        load_rewardbench(FIXTURES / "rewardbench")
        + load_rewardbench2(FIXTURES / "rewardbench2")
        + load_rm_bench(FIXTURES / "rm-bench")
        + load_judgebench(FIXTURES / "judgebench" / "data")
        + load_rmb(FIXTURES / "rmb")
        + load_ppe_preference(FIXTURES / "ppe" / "human_preference.jsonl")
        + load_ppe_correctness(FIXTURES / "ppe" / "mmlu_pro_best_of_k.jsonl")
        + load_ppe_correctness(FIXTURES / "ppe" / "math_best_of_k.jsonl")
    )


def test_fixtures_run_end_to_end_with_an_oracle_reward():
    items = load_all_fixtures()
    results = score_items(items, oracle_scores(items))
    assert set(results) == set(PAPER_BENCHMARKS)
    # The oracle puts every chosen response above every rejected one, so every benchmark scores 100,
    # except RewardBench 2 Ties, whose official formula reaches 101 here: ref:0 rewards [10, .001, .002]
    # and tied:0 [10, 10.001, 10.002, .003, .004] are all accurate and correctness-preferred
    # (0.3 + 0.3 + 0.2 + 0.2), and the margin term is tanh(min(9.998, 9.996) / 0.002 - 1) = 1 (x 0.01).
    for name in PAPER_BENCHMARKS:
        if name != "rewardbench2":
            assert results[name]["score"] == pytest.approx(100.0), name
    assert results["rewardbench2"]["subsets"]["Ties"] == pytest.approx(101.0)
    assert results["rewardbench2"]["score"] == pytest.approx((100 * 3 + 101) / 4)
    assert paper_average(results) == pytest.approx((100 * 6 + 100.25) / 7)
    assert results["ppe_preference"]["n_skipped"] == 1  # the fixture's tie vote


def test_fixtures_with_an_anti_oracle_reward():
    items = load_all_fixtures()
    # Negate the oracle: every rejected response now wins.
    results = score_items(items, [[-s for s in row] for row in oracle_scores(items)])
    for name in ("rewardbench", "rm_bench", "judgebench", "rmb", "ppe_preference", "ppe_correctness"):
        assert results[name]["score"] == pytest.approx(0.0), name


def test_score_items_accepts_a_mapping_and_checks_alignment():
    items = load_rewardbench(FIXTURES / "rewardbench")
    by_key = {item.key: scores for item, scores in zip(items, oracle_scores(items))}
    assert score_items(items, by_key)["rewardbench"]["score"] == pytest.approx(100.0)
    with pytest.raises(KeyError, match="no scores"):
        score_items(items, dict(list(by_key.items())[1:]))
    with pytest.raises(ValueError, match="2 responses"):
        score_items(items[:1], [[1.0, 0.0, 0.5]])
    with pytest.raises(ValueError, match="score lists"):
        score_items(items, [[1.0, 0.0]])
