"""The seven benchmarks in one table: benchmark key -> how its files load, what record its metrics
read for one item and its rewards, the metrics themselves, and the groups those metrics report.

``benchmarks.load_benchmarks`` finds the files through it, ``sample.sample_benchmarks`` spreads a
smoke run over the groups, and ``harness.score_items`` turns rewards into metrics through it. Each
entry's functions live in the benchmark's own module (rewardbench, rewardbench2, rm_bench,
judgebench, rmb, ppe), whose docstring states the official rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from synpref.eval import judgebench, ppe, rewardbench, rewardbench2, rm_bench, rmb
from synpref.eval.headline import PAPER_BENCHMARKS
from synpref.eval.items import EvalItem


@dataclass(frozen=True)
class Benchmark:
    """How one benchmark is loaded and measured.

    load: its items from a local file or folder (laid out as its official repo or hub export).
    load_hub: its items from the Hugging Face hub, or None for a benchmark that is not there.
    record: (item, one reward per response) -> the record its metrics read.
    metrics: records -> its metrics dict (percentages, the headline under "score").
    metric_group: the group an item's result is reported under (a RewardBench subset, an RM-Bench
        domain, a JudgeBench category, an RMB set and goal), which a sample must cover.
    """

    load: Callable[[Path], list[EvalItem]]
    load_hub: Callable[[], list[EvalItem]] | None
    record: Callable[[EvalItem, list[float]], dict]
    metrics: Callable[[Iterable[Mapping]], dict]
    metric_group: Callable[[EvalItem], str]


def item_subset(item: EvalItem) -> str:
    """The item's own subset, for benchmarks whose metrics report every subset."""
    return item.subset


BENCHMARKS: dict[str, Benchmark] = {
    rewardbench.REWARDBENCH: Benchmark(
        load=rewardbench.load_rewardbench,
        load_hub=lambda: rewardbench.load_rewardbench(hub_id=rewardbench.REWARDBENCH_HUB_ID),
        record=rewardbench.rewardbench_record,
        metrics=rewardbench.score_rewardbench,
        metric_group=item_subset,
    ),
    rewardbench2.REWARDBENCH2: Benchmark(
        load=rewardbench2.load_rewardbench2,
        load_hub=lambda: rewardbench2.load_rewardbench2(hub_id=rewardbench2.REWARDBENCH2_HUB_ID),
        record=rewardbench2.rewardbench2_record,
        metrics=rewardbench2.score_rewardbench2,
        metric_group=item_subset,
    ),
    ppe.PPE_PREFERENCE: Benchmark(
        load=ppe.load_ppe_preference,
        load_hub=lambda: ppe.load_ppe_preference(hub_id=ppe.PPE_PREFERENCE_HUB_ID),
        record=ppe.ppe_preference_record,
        metrics=ppe.score_ppe_preference,
        metric_group=ppe.ppe_preference_metric_group,
    ),
    ppe.PPE_CORRECTNESS: Benchmark(
        load=ppe.load_ppe_correctness_sets,
        load_hub=ppe.load_ppe_correctness_from_hub,
        record=ppe.ppe_correctness_record,
        metrics=ppe.score_ppe_correctness,
        metric_group=item_subset,
    ),
    rmb.RMB: Benchmark(
        load=rmb.load_rmb,
        load_hub=None,
        record=rmb.rmb_record,
        metrics=rmb.rmb_metrics,
        metric_group=rmb.rmb_metric_group,
    ),
    rm_bench.RM_BENCH: Benchmark(
        load=rm_bench.load_rm_bench,
        load_hub=None,
        record=rm_bench.rm_bench_record,
        metrics=rm_bench.score_rm_bench,
        metric_group=rm_bench.rm_bench_metric_group,
    ),
    judgebench.JUDGEBENCH: Benchmark(
        load=judgebench.load_judgebench,
        load_hub=None,
        record=judgebench.judgebench_record,
        metrics=judgebench.score_judgebench,
        metric_group=judgebench.judgebench_metric_group,
    ),
}

# The table and the paper's list must name the same seven, in the same order.
assert tuple(BENCHMARKS) == PAPER_BENCHMARKS
