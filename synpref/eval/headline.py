"""Benchmark scoring: from per-response reward scores to each benchmark's official metrics.

One pure function per benchmark (the rules and their official sources are in each module's
docstring):

- ``score_rewardbench``      RewardBench 1            (scoring_rewardbench.py)
- ``score_rewardbench2``     RewardBench 2            (scoring_rewardbench2.py)
- ``score_rm_bench``         RM-Bench                 (scoring_rm_bench.py)
- ``score_judgebench``       JudgeBench, RM judge     (scoring_judgebench.py)
  ``replay_judgebench_outputs`` recomputes the official metrics from official output files
- ``score_rmb``              RMB                      (scoring_rmb.py)
- ``score_ppe_preference``   PPE human preference     (scoring_ppe.py)
- ``score_ppe_correctness``  PPE correctness          (scoring_ppe.py)

Every result is a dict of percentages in [0, 100] with the headline number under "score".
``paper_average`` is the Skywork-Reward-V2 paper's headline: the plain mean of the seven.
"""

from __future__ import annotations

from numbers import Real
from typing import Mapping

from synpref.eval.scoring_judgebench import replay_judgebench_outputs, score_judgebench
from synpref.eval.scoring_ppe import score_ppe_correctness, score_ppe_preference
from synpref.eval.scoring_rewardbench import score_rewardbench
from synpref.eval.scoring_rewardbench2 import score_rewardbench2
from synpref.eval.scoring_rm_bench import score_rm_bench
from synpref.eval.scoring_rmb import score_rmb

# The seven columns the paper averages (Table 1 of arXiv 2507.01352), by the keys used here.
PAPER_BENCHMARKS: tuple[str, ...] = (
    "rewardbench",
    "rewardbench2",
    "ppe_preference",
    "ppe_correctness",
    "rmb",
    "rm_bench",
    "judgebench",
)

SCORERS = {
    "rewardbench": score_rewardbench,
    "rewardbench2": score_rewardbench2,
    "ppe_preference": score_ppe_preference,
    "ppe_correctness": score_ppe_correctness,
    "rmb": score_rmb,
    "rm_bench": score_rm_bench,
    "judgebench": score_judgebench,
}


def headline(result: Mapping | Real) -> float:
    """A benchmark's headline number: a scorer's result dict ("score") or a bare number."""
    if isinstance(result, Real):
        return float(result)
    return float(result["score"])


def paper_average(results: Mapping[str, Mapping | Real], *, allow_partial: bool = False) -> float:
    """The plain mean of the seven benchmarks' headline numbers, as the paper reports it.

    results: benchmark key (see PAPER_BENCHMARKS) -> a scorer's result or a number. Keys outside
    the seven are ignored. A missing benchmark is an error unless allow_partial, in which case the
    mean is over those present (and is then not comparable with the paper's average).
    """
    present = [name for name in PAPER_BENCHMARKS if name in results]
    missing = [name for name in PAPER_BENCHMARKS if name not in results]
    if missing and not allow_partial:
        raise ValueError(f"paper_average needs all seven benchmarks; missing {missing}")
    if not present:
        raise ValueError("paper_average got none of the seven benchmarks")
    return sum(headline(results[name]) for name in present) / len(present)


__all__ = [
    "PAPER_BENCHMARKS",
    "SCORERS",
    "headline",
    "paper_average",
    "replay_judgebench_outputs",
    "score_judgebench",
    "score_ppe_correctness",
    "score_ppe_preference",
    "score_rewardbench",
    "score_rewardbench2",
    "score_rm_bench",
    "score_rmb",
]
