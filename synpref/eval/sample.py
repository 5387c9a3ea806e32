"""A smoke run's sample: at most `limit` items of each benchmark, seeded, spread over its subsets.

The first N items of a benchmark file all come from one subset (RMB's first file is best-of-N
harmlessness S1), so a smoke run of the first N would say nothing about the rest. Instead each
benchmark's items are split into the groups its metrics report (registry: RMB set x goal, JudgeBench
category, RM-Bench domain, RewardBench subset) and the limit is shared out:

- when the limit allows, every subset first gets one item (so a JudgeBench sample holds every
  mmlu-pro subject); a limit below the number of subsets (RMB's ~95 categories) skips this;
- then items go one at a time to the group holding the fewest so far, so the groups end up about
  limit / len(groups) each, and a group smaller than its share gives all it has;
- inside a group, items are taken round-robin over its subsets, in a seeded random order.

The same items, seed and limit give the same sample (random.Random seeded with a string is the same
on every machine and Python process), and the sample keeps the items' file order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable

from synpref.eval.items import EvalItem
from synpref.eval.registry import BENCHMARKS


def group_quotas(group_sizes: dict[str, int], group_floors: dict[str, int], limit: int,
                 rng: random.Random) -> dict[str, int]:
    """How many items each group gives: its floor, then one at a time to the group with the fewest."""
    quotas = dict(group_floors)
    # ties between equally small groups go by a seeded order, not by name
    order = {name: rank for rank, name in enumerate(rng.sample(sorted(group_sizes), len(group_sizes)))}
    left = limit - sum(quotas.values())
    open_groups = [name for name in group_sizes if quotas[name] < group_sizes[name]]
    while left > 0 and open_groups:
        name = min(open_groups, key=lambda g: (quotas[g], order[g]))
        quotas[name] += 1
        left -= 1
        if quotas[name] == group_sizes[name]:
            open_groups.remove(name)
    return quotas


def round_robin(indices_by_subset: dict[str, list[int]], count: int, rng: random.Random) -> list[int]:
    """count indices taken one subset at a time, each subset's in a seeded random order."""
    queues = [rng.sample(indices, len(indices)) for _, indices in sorted(indices_by_subset.items())]
    rng.shuffle(queues)  # which subsets give the extra items is the seed's choice too
    taken: list[int] = []
    while len(taken) < count:
        for queue in queues:
            if queue and len(taken) < count:
                taken.append(queue.pop())
    return taken


def sample_items(items: list[EvalItem], limit: int, *, seed: str,
                 metric_group: Callable[[EvalItem], str]) -> list[EvalItem]:
    """At most limit of items, spread over metric groups and subsets (see the module docstring)."""
    if len(items) <= limit:
        return list(items)
    rng = random.Random(seed)
    indices: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, item in enumerate(items):
        indices[metric_group(item)][item.subset].append(index)
    sizes = {group: sum(len(v) for v in subsets.values()) for group, subsets in indices.items()}
    floors = {group: len(subsets) for group, subsets in indices.items()}  # one item per subset
    if sum(floors.values()) > limit:
        floors = dict.fromkeys(floors, 0)
    quotas = group_quotas(sizes, floors, limit, rng)
    chosen: list[int] = []
    for group in sorted(indices):
        chosen += round_robin(indices[group], quotas[group], rng)
    return [items[index] for index in sorted(chosen)]


def sample_benchmarks(by_benchmark: dict[str, list[EvalItem]], limit: int,
                      seed: int | str = 0) -> dict[str, list[EvalItem]]:
    """Each benchmark's sample of at most limit items; a benchmark's sample depends on its own items
    and the seed only (not on which other benchmarks are present)."""
    return {
        name: sample_items(items, limit, seed=f"{seed}:{name}", metric_group=BENCHMARKS[name].metric_group)
        for name, items in by_benchmark.items()
    }
