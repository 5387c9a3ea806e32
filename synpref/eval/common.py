"""Small numeric helpers shared by the benchmark scorers.

Every scorer reports accuracies as percentages in [0, 100], the unit the paper and the public
leaderboards print, and puts its headline number under the key "score".
"""

from __future__ import annotations

import math
from typing import Iterable


def as_float(value) -> float:
    """One reward score as a float.

    Reward pipelines often return a one-element list per response (the official RewardBench 2 and
    RM-Bench code unwrap ``[x]`` to ``x`` the same way), so accept that too.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"expected one score, got {len(value)}: {value!r}")
        value = value[0]
    score = float(value)
    if math.isnan(score):
        # A NaN compares False with everything, which would silently count as "wrong" everywhere.
        raise ValueError("a reward score is NaN")
    return score


def as_floats(values: Iterable) -> list[float]:
    return [as_float(v) for v in values]


def percent(numerator: float, denominator: float) -> float:
    if denominator == 0:
        raise ValueError("cannot take a share of zero items")
    return 100.0 * numerator / denominator


def mean(values: Iterable[float]) -> float:
    values = list(values)
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)
