"""What every loader shares: hub loading through the optional `datasets` package, one source, files
that are not benchmark data skipped with a line, and malformed data files named in the error."""

import json
import shutil
import sys
import types

import pytest

from synpref.eval.benchmarks import load_benchmarks
from synpref.eval.ppe import PPE_CORRECTNESS_HUB_IDS, load_ppe_correctness
from synpref.eval.rewardbench import REWARDBENCH_HUB_ID, load_rewardbench
from synpref.eval.rewardbench2 import REWARDBENCH2_HUB_ID, load_rewardbench2
from synpref.eval.rmb import load_rmb

from .helpers import FIXTURES


def test_hub_loading_needs_datasets_and_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        load_rewardbench(hub_id=REWARDBENCH_HUB_ID)


def test_hub_loading_goes_through_datasets_load_dataset(monkeypatch):
    calls = []
    rows = [json.loads(line) for line in (FIXTURES / "rewardbench2" / "test.jsonl").read_text().splitlines()]

    def load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return rows

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    items = load_rewardbench2(hub_id=REWARDBENCH2_HUB_ID)
    assert calls == [("allenai/reward-bench-2", "test")]
    assert len(items) == 5

    calls.clear()
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda h, split: calls.append((h, split)) or []))
    assert load_ppe_correctness(hub_id=PPE_CORRECTNESS_HUB_IDS["mbpp_plus"]) == []
    assert calls == [("lmarena-ai/PPE-MBPP-Plus-Best-of-K", "train")]


def test_loaders_need_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        load_rewardbench()
    with pytest.raises(ValueError, match="exactly one"):
        load_rewardbench(FIXTURES / "rewardbench", hub_id="allenai/reward-bench")


# --- files that are not data, and malformed data --------------------------------------------------


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_files_that_are_not_benchmark_data_are_skipped_with_a_line(tmp_path, capsys):
    folder = tmp_path / "rewardbench"
    shutil.copytree(FIXTURES / "rewardbench", folder)
    (folder / "README.md").write_text("# RewardBench export\n")
    write_json(folder / "config.json", {"name": "reward-bench", "splits": {"filtered": 2985}})
    write_json(folder / "results" / "some-rm.json", [{"id": 1, "subset": "alpacaeval-easy", "correct": 1}])
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    assert [item.key for item in load_rewardbench(folder)] == [item.key for item in load_rewardbench(FIXTURES / "rewardbench")]
    lines = capsys.readouterr().out.splitlines()
    assert f"skipping {folder / 'README.md'}: not a data file (.json, .jsonl, .parquet)" in lines
    assert f"skipping {folder / 'config.json'}: not RewardBench data (a JSON object, not a list of records)" in lines
    assert any(line.startswith(f"skipping {folder / 'results' / 'some-rm.json'}: not RewardBench data (no record "
                               "has a 'prompt' field") for line in lines)
    assert not any(".git" in line for line in lines)  # a clone's hidden files pass silently
    assert len(lines) == 3


def test_a_folder_with_no_data_is_a_missing_benchmark(tmp_path, capsys):
    results = write_json(tmp_path / "rmb" / "eval" / "result" / "some-rm_result.json",
                         [{"pair_uid": "1", "category_path": "Pairwise_set/Harmlessness/S1", "is_correct": 1}])
    items, missing = load_benchmarks({"rmb": tmp_path / "rmb"}, only=["rmb"])
    assert items == {}
    assert "each was skipped as not its data" in missing["rmb"]
    assert f"skipping {results}: not RMB data" in capsys.readouterr().out


def test_a_malformed_data_file_names_the_file_and_the_field(tmp_path):
    good = json.loads((FIXTURES / "rmb" / "RMB_dataset" / "Pairwise_set" / "Helpfulness" / "Chat" / "Discussion.json")
                      .read_text())
    broken = [good[0], {key: value for key, value in good[1].items() if key != "reject"}]
    path = write_json(tmp_path / "rmb" / "RMB_dataset" / "Pairwise_set" / "Helpfulness" / "Chat" / "Discussion.json",
                      broken)
    with pytest.raises(ValueError, match=r"Discussion\.json: record 2 has no field 'reject'") as error:
        load_rmb(tmp_path / "rmb")
    assert str(path) in str(error.value)
    # the job does not report it as a missing benchmark: it stops, naming the file
    with pytest.raises(ValueError, match="has no field 'reject'"):
        load_benchmarks({"rmb": tmp_path / "rmb"}, only=["rmb"])

    # a nested field, a JSONL record and a file that is not JSON at all are named the same way
    broken[0] = {**good[0], "chosen": {"llm_name": "gpt-4o"}}
    write_json(path, broken)
    with pytest.raises(ValueError, match=r"Discussion\.json: record 1 has no field 'answer'"):
        load_rmb(tmp_path / "rmb")
    rows = [json.loads(line) for line in (FIXTURES / "rewardbench" / "filtered.jsonl").read_text().splitlines()]
    del rows[2]["subset"]
    jsonl = tmp_path / "rewardbench" / "filtered.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match=r"filtered\.jsonl: record 3 has no field 'subset'"):
        load_rewardbench(jsonl.parent)
    jsonl.write_text('{"prompt": "cut off')
    with pytest.raises(ValueError, match=r"filtered\.jsonl: not valid JSON"):
        load_rewardbench(jsonl.parent)


def test_hub_uris_go_through_the_hub_resolution_not_datasets(tmp_path, monkeypatch):
    # the naming data.input takes: resolved in the synpref cache ($SYNPREF_CACHE/hub), laid out as
    # huggingface_hub lays it out, offline; `datasets` is never imported
    import gzip
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from synpref.runner.errors import BadConfig

    rows = [json.loads(line) for line in (FIXTURES / "rewardbench2" / "test.jsonl").read_text().splitlines()]
    repo = tmp_path / "hub" / "datasets--allenai--reward-bench-2"
    snapshot = repo / "snapshots" / ("ab" * 20)
    (snapshot / "data").mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                        "  - split: test\n    path: data/test-*\n---\n")
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows[:3]), parquet)
    (snapshot / "data" / "test-00000-of-00002.parquet").write_bytes(parquet.getvalue())
    (snapshot / "data" / "test-00001-of-00002.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(row) + "\n" for row in rows[3:]).encode()))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab" * 20)
    monkeypatch.setenv("SYNPREF_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "datasets", None)

    items = load_rewardbench2(hub_id="hf://datasets/allenai/reward-bench-2")
    assert [item.key for item in items] == [item.key for item in load_rewardbench2(FIXTURES / "rewardbench2")]
    with pytest.raises(BadConfig, match="hub_id=hf://datasets/allenai/reward-bench-2: config default has no split "
                                         "'filtered'; its splits: test"):
        load_rewardbench2(hub_id="hf://datasets/allenai/reward-bench-2", split="filtered")
