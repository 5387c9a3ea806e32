"""limit=N: a seeded sample of each benchmark spread over its subsets, on made-up items and on the real
shared files loaded with the default paths of conf/evaluate.yaml."""

from collections import Counter
from pathlib import Path

from omegaconf import OmegaConf

from synpref.eval.benchmarks import benchmark_paths, load_benchmarks
from synpref.eval.items import EvalItem
from synpref.eval.registry import BENCHMARKS
from synpref.eval.sample import sample_benchmarks, sample_items

CONF = Path(__file__).resolve().parents[2] / "conf" / "evaluate.yaml"


def made_up(sizes: dict[str, int], benchmark: str = "rewardbench") -> list[EvalItem]:
    """Items of the given subsets, in blocks as benchmark files list them (all of one subset, then the next)."""
    return [EvalItem(benchmark=benchmark, subset=subset, sample_id=f"{subset}-{n}",
                     conversation=[{"role": "user", "content": "q"}], responses=["a", "b"], is_chosen=[True, False])
            for subset, size in sizes.items() for n in range(size)]


def by_subset(items: list[EvalItem]) -> Counter:
    return Counter(item.subset for item in items)


def test_sample_shares_the_limit_and_gives_small_subsets_whole():
    items = made_up({"big": 100, "medium": 30, "tiny": 2})
    sample = sample_items(items, 20, seed="0", metric_group=lambda item: item.subset)
    # 20 over 3 subsets: tiny gives its 2, the 18 left split 9 / 9
    assert by_subset(sample) == {"big": 9, "medium": 9, "tiny": 2}
    positions = [items.index(item) for item in sample]
    assert positions == sorted(positions)  # the sample keeps the file order


def test_sample_is_seeded():
    items = made_up({"a": 50, "b": 50})
    first = sample_items(items, 10, seed="0", metric_group=lambda item: item.subset)
    assert first == sample_items(items, 10, seed="0", metric_group=lambda item: item.subset)
    assert first != sample_items(items, 10, seed="1", metric_group=lambda item: item.subset)
    assert sample_items(items, 500, seed="0", metric_group=lambda item: item.subset) == items  # all fit


def test_sample_covers_every_subset_of_a_group_first_when_the_limit_allows():
    # JudgeBench-like: one group of 14 subjects and three single-subset groups; limit 20
    sizes = {f"mmlu-pro-{n}": 20 for n in range(14)} | {"livebench-math": 50, "livecodebench": 50,
                                                         "livebench-reasoning": 50}
    group = BENCHMARKS["judgebench"].metric_group
    sample = sample_items(made_up(sizes, "judgebench"), 20, seed="0", metric_group=group)
    assert set(by_subset(sample)) == set(sizes)  # every subject, though knowledge then holds 14 of 20
    assert Counter(map(group, sample)) == {"knowledge": 14, "math": 2, "coding": 2, "reasoning": 2}
    # below one item per subset, the groups still share the limit evenly
    small = sample_items(made_up(sizes, "judgebench"), 8, seed="0", metric_group=group)
    assert Counter(map(group, small)) == {"knowledge": 2, "math": 2, "coding": 2, "reasoning": 2}


def test_sample_benchmarks_seeds_each_benchmark_apart():
    rewardbench = made_up({"alpacaeval-easy": 40, "donotanswer": 40})
    alone = sample_benchmarks({"rewardbench": rewardbench}, 6, seed=3)
    together = sample_benchmarks({"rewardbench": rewardbench, "rewardbench2": made_up({"Math": 9}, "rewardbench2")},
                                 6, seed=3)
    assert alone["rewardbench"] == together["rewardbench"]
    assert len(together["rewardbench2"]) == 6


def test_limit_40_on_the_shared_files_with_the_default_paths_covers_every_subset(shared_benchmarks, capsys):
    cfg = OmegaConf.load(CONF)
    paths = benchmark_paths(str(shared_benchmarks), OmegaConf.to_container(cfg.benchmarks.paths))
    loaded, missing = load_benchmarks(paths, use_hub=False)
    # the shared folder holds the official RM-Bench, JudgeBench and RMB checkouts
    assert set(loaded) == {"rm_bench", "judgebench", "rmb"}
    assert set(missing) == {"rewardbench", "rewardbench2", "ppe_preference", "ppe_correctness"}
    out = capsys.readouterr().out
    assert "rmb/eval/result/ArmoRM-Llama3-8B-v0.1_result.json: not RMB data" in out  # another model's results

    sample = sample_benchmarks(loaded, 40, seed=cfg.limit_seed)
    assert sample == sample_benchmarks(loaded, 40, seed=cfg.limit_seed)
    for name, items in sample.items():
        group = BENCHMARKS[name].metric_group
        assert len(items) == 40, name
        # every group the metrics report is in the sample, about evenly (40 / 3 or 40 / 4 each)
        groups = Counter(map(group, items))
        assert set(groups) == set(map(group, loaded[name])), name
        subsets = {item.subset for item in loaded[name]}
        if len(subsets) <= 40:
            assert {item.subset for item in items} == subsets, name  # and every subset of the files
    assert Counter(map(BENCHMARKS["rmb"].metric_group, sample["rmb"])) == {
        "pairwise helpfulness": 10, "pairwise harmlessness": 10, "bon helpfulness": 10, "bon harmlessness": 10}
    assert Counter(map(BENCHMARKS["rm_bench"].metric_group, sample["rm_bench"])) == {"chat": 13, "code": 13,
                                                                                     "safety": 14}
    # RMB has 95 categories, more than 40: the sample holds 40 different ones
    assert len({item.subset for item in sample["rmb"]}) == 40
