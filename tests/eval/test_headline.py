"""The paper's average of the seven headline numbers."""

import pytest

from synpref.eval.headline import PAPER_BENCHMARKS, paper_average


def test_paper_average_reproduces_the_papers_best_model():
    # Skywork-Reward-V2-Llama-3.1-8B-40M (paper Table 1): the seven columns and their average 88.6.
    paper = {
        "rewardbench": 97.8,
        "rewardbench2": 86.5,
        "ppe_preference": 79.8,
        "ppe_correctness": 87.2,
        "rmb": 89.3,
        "rm_bench": 96.0,
        "judgebench": 83.4,
    }
    assert set(paper) == set(PAPER_BENCHMARKS)
    # 620.0 / 7 = 88.571 -> 88.6
    assert paper_average(paper) == pytest.approx(620.0 / 7)
    assert round(paper_average(paper), 1) == 88.6
    # scorer results work too (their "score")
    assert paper_average({**paper, "rm_bench": {"score": 96.0, "hard": 1.0}}) == pytest.approx(620.0 / 7)


def test_paper_average_needs_all_seven_unless_partial():
    with pytest.raises(ValueError, match="missing"):
        paper_average({"rewardbench": 90.0})
    assert paper_average({"rewardbench": 90.0, "rmb": 70.0, "other": 0.0}, allow_partial=True) == pytest.approx(80.0)
