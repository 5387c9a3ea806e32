"""The Skywork-Reward-V2 paper's headline: one number per benchmark and their plain mean.

Every benchmark's metrics (in its own module: rewardbench, rewardbench2, rm_bench, judgebench, rmb,
ppe; the table of them in registry) are a dict of percentages in [0, 100] with the headline number
under "score". ``paper_average`` is the paper's headline: the plain mean of the seven.
"""

from __future__ import annotations

from numbers import Real
from typing import Mapping

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


def headline(result: Mapping | Real) -> float:
    """A benchmark's headline number: a metrics dict ("score") or a bare number."""
    if isinstance(result, Real):
        return float(result)
    return float(result["score"])


def paper_average(results: Mapping[str, Mapping | Real], *, allow_partial: bool = False) -> float:
    """The plain mean of the seven benchmarks' headline numbers, as the paper reports it.

    results: benchmark key (see PAPER_BENCHMARKS) -> a metrics dict or a number. Keys outside
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
