"""Benchmark loaders on the fixture files (every official format) and on the real shared files,
plus the glue from items and rewards to the scorers."""

import json
import os
import sys
import types
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synpref.eval import loaders
from synpref.eval.harness import score_items
from synpref.eval.loaders import EvalItem
from synpref.eval.headline import PAPER_BENCHMARKS, paper_average

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
ROLES = {"system", "user", "assistant"}


def _benchmarks_dir() -> Path:
    root = os.environ.get("SYNPREF_BENCHMARKS")
    if not root:
        pytest.skip("SYNPREF_BENCHMARKS is not set, so the shared benchmark files are not available")
    return Path(root)


def assert_well_formed(items: list[EvalItem], benchmark: str):
    assert items, "no items loaded"
    keys = [item.key for item in items]
    assert len(set(keys)) == len(keys), "sample ids must be unique within a benchmark"
    for item in items:
        assert item.benchmark == benchmark
        assert item.subset
        assert item.conversation and item.conversation[-1]["role"] == "user"
        assert all(set(m) == {"role", "content"} and m["role"] in ROLES and isinstance(m["content"], str)
                   for m in item.conversation)
        assert len(item.responses) >= 2 and all(isinstance(r, str) and r for r in item.responses)
        assert len(item.is_chosen) == len(item.responses)


def oracle_scores(items: list[EvalItem]) -> list[list[float]]:
    """Rewards that always prefer the chosen responses, distinct within each item."""
    return [[(10.0 if ok else 0.0) + 0.001 * i for i, ok in enumerate(item.is_chosen)] for item in items]


# --- fixtures, one per official format -----------------------------------------------------------


def test_rewardbench_fixture():
    items = loaders.load_rewardbench(FIXTURES / "rewardbench" / "filtered.jsonl")
    assert_well_formed(items, loaders.REWARDBENCH)
    assert len(items) == 7
    first = items[0]
    assert first.subset == "alpacaeval-easy" and first.sample_id == "1"
    assert first.conversation == [{"role": "user", "content": "Name a primary colour."}]
    assert first.responses == ["Red is a primary colour.", "Green is a primary colour of paint."]
    assert first.is_chosen == [True, False]


def test_rewardbench2_fixture_puts_chosen_first():
    items = loaders.load_rewardbench2(FIXTURES / "rewardbench2" / "test.jsonl")
    assert_well_formed(items, loaders.REWARDBENCH2)
    assert Counter(i.subset for i in items) == {"Factuality": 1, "Precise IF": 1, "Math": 1, "Ties": 2}
    tied = next(i for i in items if i.sample_id == "tied:0")
    assert tied.responses == ["2", "3", "5", "4", "9"]
    assert tied.is_chosen == [True, True, True, False, False]
    assert tied.extra["num_correct"] == 3


def test_rm_bench_fixture_domains_come_from_file_names():
    items = loaders.load_rm_bench(FIXTURES / "rm-bench")
    assert_well_formed(items, loaders.RM_BENCH)
    assert [(i.subset, i.sample_id) for i in items] == [("chat", "chat:1"), ("safety-refuse", "safety-refuse:2952")]
    assert items[0].is_chosen == [True] * 3 + [False] * 3
    assert items[0].responses[0] == "100 °C." and items[0].responses[3] == "90 °C."


def test_judgebench_fixture_and_output_replay():
    items = loaders.load_judgebench(FIXTURES / "judgebench" / "data")
    assert_well_formed(items, loaders.JUDGEBENCH)
    assert [i.extra["label"] for i in items] == ["A>B", "B>A", "A>B", "B>A"]
    assert items[1].is_chosen == [False, True]
    assert items[0].subset == "mmlu-pro-physics"

    outputs = loaders.load_judgebench_outputs(
        FIXTURES / "judgebench" / "outputs"
        / "dataset=judgebench,response_model=fixture-model,judge_name=reward_model,judge_model=fixture_rm.jsonl"
    )
    from synpref.eval.headline import replay_judgebench_outputs

    result = replay_judgebench_outputs(outputs)
    # stored rewards (A, B): jb-1 (2, 1) label A>B right; jb-2 (0.5, 0.5) tie -> 0, wrong;
    # jb-3 (1, 3) label A>B wrong; jb-4 (-1, 2) label B>A right -> micro 2/4 = 50
    assert result["categories"] == pytest.approx({"knowledge": 100.0, "reasoning": 0.0, "math": 0.0, "coding": 100.0})
    assert result["overall_micro"] == pytest.approx(50.0)
    # scoring the loaded items with the same rewards gives the same metrics
    rewards = {"jb-1": [2.0, 1.0], "jb-2": [0.5, 0.5], "jb-3": [1.0, 3.0], "jb-4": [-1.0, 2.0]}
    assert score_items(items, [rewards[i.sample_id] for i in items])["judgebench"] == result


def test_rmb_fixture_reads_both_sets():
    items = loaders.load_rmb(FIXTURES / "rmb" / "RMB_dataset")
    assert_well_formed(items, loaders.RMB)
    assert Counter(i.extra["set"] for i in items) == {"pairwise": 3, "bon": 2}
    multi_turn = next(i for i in items if i.sample_id == "pairwise:9002")
    assert [m["role"] for m in multi_turn.conversation] == ["user", "assistant", "user"]
    bon = next(i for i in items if i.sample_id == "bon:9201")
    assert bon.is_chosen == [True, False, False]
    assert bon.subset == "BoN_set/Helpfulness/Code/Documentation"
    assert bon.extra["models"] == ["gpt-4o", "Mistral-7B-Instruct-v0.1", "qwen-2-7b"]


def test_ppe_preference_fixture():
    items = loaders.load_ppe_preference(FIXTURES / "ppe" / "human_preference.jsonl")
    assert_well_formed(items, loaders.PPE_PREFERENCE)
    assert [i.is_chosen for i in items] == [[True, False], [False, True], [False, False]]  # model_a, model_b, tie
    assert items[2].extra["winner"] == "tie"


def test_ppe_correctness_fixture_infers_the_set_from_the_file_name():
    items = loaders.load_ppe_correctness(FIXTURES / "ppe" / "mmlu_pro_best_of_k.jsonl")
    assert_well_formed(items, loaders.PPE_CORRECTNESS)
    (item,) = items
    assert item.subset == "mmlu_pro"
    assert item.sample_id == "mmlu_pro:mp-1:llama-3-8b-instruct"
    assert item.is_chosen == [True, False, False, True]
    assert item.responses[1] == "Sodium. The answer is (B)."
    assert item.extra["conflict_pairs"] == [[0, 1], [3, 2]]
    with pytest.raises(ValueError, match="pass subset="):
        loaders.load_ppe_correctness(FIXTURES / "ppe" / "human_preference.jsonl")


def test_ppe_correctness_reads_parquet_with_32_responses(tmp_path):
    # The hub files are Parquet; response_10 must sort after response_9.
    row = {"question_id": "q", "model_name": "m", "prompt": "p", "scores": [i % 2 == 0 for i in range(32)],
           "sampled_conflict_pairs": [[0, 1]]}
    row.update({f"response_{i + 1}": f"answer {i + 1}" for i in range(32)})
    path = tmp_path / "PPE-GPQA-Best-of-K.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (item,) = loaders.load_ppe_correctness(path)
    assert item.subset == "gpqa"
    assert item.responses == [f"answer {i + 1}" for i in range(32)]
    assert item.is_chosen[:3] == [True, False, True]


def test_hub_loading_needs_datasets_and_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        loaders.load_rewardbench(hub_id=loaders.HUB_IDS["rewardbench"])


def test_hub_loading_goes_through_datasets_load_dataset(monkeypatch):
    calls = []
    rows = [json.loads(line) for line in (FIXTURES / "rewardbench2" / "test.jsonl").read_text().splitlines()]

    def load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return rows

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    items = loaders.load_rewardbench2(hub_id=loaders.HUB_IDS["rewardbench2"])
    assert calls == [("allenai/reward-bench-2", "test")]
    assert len(items) == 5

    calls.clear()
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda h, split: calls.append((h, split)) or []))
    assert loaders.load_ppe_correctness(hub_id=loaders.PPE_CORRECTNESS_HUB_IDS["mbpp_plus"]) == []
    assert calls == [("lmarena-ai/PPE-MBPP-Plus-Best-of-K", "train")]


def test_loaders_need_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        loaders.load_rewardbench()
    with pytest.raises(ValueError, match="exactly one"):
        loaders.load_rewardbench(FIXTURES / "rewardbench", hub_id="allenai/reward-bench")


# --- end to end on the fixtures ------------------------------------------------------------------


def load_all_fixtures() -> list[EvalItem]:
    return (
        loaders.load_rewardbench(FIXTURES / "rewardbench")
        + loaders.load_rewardbench2(FIXTURES / "rewardbench2")
        + loaders.load_rm_bench(FIXTURES / "rm-bench")
        + loaders.load_judgebench(FIXTURES / "judgebench" / "data")
        + loaders.load_rmb(FIXTURES / "rmb")
        + loaders.load_ppe_preference(FIXTURES / "ppe" / "human_preference.jsonl")
        + loaders.load_ppe_correctness(FIXTURES / "ppe" / "mmlu_pro_best_of_k.jsonl")
        + loaders.load_ppe_correctness(FIXTURES / "ppe" / "math_best_of_k.jsonl")
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
    items = loaders.load_rewardbench(FIXTURES / "rewardbench")
    by_key = {item.key: scores for item, scores in zip(items, oracle_scores(items))}
    assert score_items(items, by_key)["rewardbench"]["score"] == pytest.approx(100.0)
    with pytest.raises(KeyError, match="no scores"):
        score_items(items, dict(list(by_key.items())[1:]))
    with pytest.raises(ValueError, match="2 responses"):
        score_items(items[:1], [[1.0, 0.0, 0.5]])
    with pytest.raises(ValueError, match="score lists"):
        score_items(items, [[1.0, 0.0]])


# --- the real shared files -----------------------------------------------------------------------


def test_real_rm_bench_files():
    items = loaders.load_rm_bench(_benchmarks_dir() / "rm-bench")
    assert_well_formed(items, loaders.RM_BENCH)
    # data/math_filtered.json (>= 4 MiB) is not in the shared copy
    assert Counter(i.subset for i in items) == {"chat": 129, "code": 228, "safety-refuse": 284, "safety-response": 157}
    assert all(len(i.responses) == 6 and i.is_chosen == [True] * 3 + [False] * 3 for i in items)


def test_real_judgebench_files():
    root = _benchmarks_dir() / "judgebench"
    items = loaders.load_judgebench(root / "data")
    assert_well_formed(items, loaders.JUDGEBENCH)
    assert Counter(i.extra["response_model"] for i in items) == {"gpt-4o-2024-05-13": 350, "claude-3-5-sonnet-20240620": 270}
    gpt = [i for i in items if i.extra["response_model"] == "gpt-4o-2024-05-13"]
    prefixes = Counter(next(p for p in ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
                            if i.subset.startswith(p)) for i in gpt)
    assert prefixes == {"mmlu-pro": 154, "livebench-reasoning": 98, "livebench-math": 56, "livecodebench": 42}
    assert all(sum(i.is_chosen) == 1 for i in items)
    outputs = sorted((root / "outputs").glob("*judge_name=reward_model*.jsonl"))
    assert len(outputs) == 5
    assert all(len(loaders.load_judgebench_outputs(f)) == 350 for f in outputs)


def test_real_rmb_files():
    items = loaders.load_rmb(_benchmarks_dir() / "rmb" / "RMB_dataset")
    assert_well_formed(items, loaders.RMB)
    sets = Counter(i.extra["set"] for i in items)
    # 46 pairwise files (3 files >= 4 MiB are not in the shared copy) and all 49 best-of-N files
    assert sets == {"pairwise": 14543, "bon": 3786}
    goals = Counter((i.extra["set"], i.subset.split("/")[1]) for i in items)
    assert goals == {("pairwise", "Helpfulness"): 8456, ("pairwise", "Harmlessness"): 6087,
                     ("bon", "Helpfulness"): 2109, ("bon", "Harmlessness"): 1677}
    bon = [i for i in items if i.extra["set"] == "bon"]
    assert all(i.is_chosen[0] and not any(i.is_chosen[1:]) and 3 <= len(i.responses) <= 7 for i in bon)
    assert any(len(i.conversation) > 1 for i in items)  # multi-turn prompts keep their history
