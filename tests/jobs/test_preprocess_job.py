"""The pre-processing job, run as a user runs it, on the demo pool (every format, every defect)."""

import json

import pyarrow.dataset as pads
import pytest

from conftest import run_job
from synpref.demo.pool import BROKEN_ROWS, write_demo_pool
from synpref.record.schema import PAIR_SCHEMA


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    expected = write_demo_pool(root / "raw", n_pairs=100)
    out = root / "out"
    proc = run_job("preprocess.py", f"data.input={root / 'raw'}", f"data.output={out}",
                   f"decontam.benchmarks=[{root / 'benchmarks'}]", "ray.num_cpus=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, out, expected, proc


def read(out, status):
    return pads.dataset(out / "pairs" / f"status={status}", format="parquet").to_table()


def test_counts_match_the_pool_and_reconcile(demo_run):
    root, out, expected, proc = demo_run
    stats = json.loads((out / "stats.json").read_text())
    stages = {row["stage"]: row for row in stats["stages"]}
    assert stats["records_in"] == expected["records"]
    assert stats["totals"]["kept"] == expected["pairs_kept"]
    assert stages["parse"]["quarantined"] == expected["quarantined"]
    assert stages["binarize"]["dropped"] == {"tied_scores": 1}
    assert stages["require_responses"]["dropped"] == {"missing_chosen": 1, "missing_rejected": 1}
    assert stages["decontaminate"]["dropped"] == {"benchmark_ngram_overlap": expected["benchmark_ngram_overlap"]}
    assert stages["dedup"]["dropped"] == {"duplicate": expected["duplicate"]}
    for row in stats["stages"]:
        assert row["in"] == row["kept"] + sum(row["dropped"].values()) + sum(row["quarantined"].values())
    assert stats["reconcile"]["ok"]
    assert "counts reconcile" in proc.stdout
    assert (out / "_SUCCESS").exists() and (out / "config.yaml").exists()


def test_every_broken_row_is_quarantined_with_its_reason_and_line(demo_run):
    root, out, expected, proc = demo_run
    quarantine = read(out, "quarantined").to_pylist()
    by_line = {int(r["source_record"].rsplit(":", 1)[1]): r for r in quarantine if "broken.jsonl" in r["source_record"]}
    assert len(by_line) == len(BROKEN_ROWS)
    for line_no, (raw, reason) in enumerate(BROKEN_ROWS, start=1):
        assert by_line[line_no]["reason"] == reason
        assert by_line[line_no]["stage"] == "parse"
        assert by_line[line_no]["raw"]  # what was read is kept for inspection


def test_kept_pairs_are_unique_clean_and_in_the_schema(demo_run):
    root, out, expected, proc = demo_run
    kept = read(out, "kept")
    for field in PAIR_SCHEMA:
        if field.name != "status":  # the partition column comes back as a dictionary column
            assert kept.schema.field(field.name).type == field.type
    rows = kept.to_pylist()
    assert len({r["pair_id"] for r in rows}) == len(rows)
    assert all(r["chosen"] and r["rejected"] and r["conversation"][-1]["role"] == "user" for r in rows)
    sources = {r["source"] for r in rows}
    assert sources == {"trl_conversational", "plain", "anthropic_hh", "ultrafeedback", "helpsteer3"}
    dropped = read(out, "dropped").to_pylist()
    assert all(r["reason"] for r in dropped)


def test_rerun_skips_and_other_settings_are_refused(demo_run):
    root, out, expected, proc = demo_run
    again = run_job("preprocess.py", f"data.input={root / 'raw'}", f"data.output={out}",
                    f"decontam.benchmarks=[{root / 'benchmarks'}]", "ray.num_cpus=2")
    assert again.returncode == 0 and "already holds this run" in again.stdout
    other = run_job("preprocess.py", f"data.input={root / 'raw'}", f"data.output={out}",
                    f"decontam.benchmarks=[{root / 'benchmarks'}]", "data.binarize=all_pairs")
    assert other.returncode != 0 and "overwrite=true" in other.stderr


def test_bad_settings_name_the_key(tmp_path):
    proc = run_job("preprocess.py", f"data.input={tmp_path}", f"data.output={tmp_path / 'o'}",
                   "data.binarize=median", "decontam.enabled=false")
    assert proc.returncode != 0 and "data.binarize='median'" in proc.stderr
    proc = run_job("preprocess.py", f"data.input={tmp_path}", f"data.output={tmp_path / 'o'}",
                   env={"SYNPREF_BENCHMARKS": ""})
    assert proc.returncode != 0 and "SYNPREF_BENCHMARKS" in proc.stderr


@pytest.mark.e2e
def test_a_hub_dataset_from_the_local_hub_cache_offline(tmp_path):
    """data.input=hf://datasets/<org>/<name> read from a huggingface_hub cache laid out in tmp_path (as
    `hf download` leaves it) with HF_HUB_OFFLINE=1: the README's default config, its train split only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    commit = "c0ffee" * 6 + "c0ff"
    repo = tmp_path / "cache" / "hub" / "datasets--synpref-test--prefs"
    snapshot = repo / "snapshots" / commit
    (snapshot / "data").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snapshot / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                        "  - split: train\n    path: data/train-*\n"
                                        "  - split: test\n    path: data/test-*\n---\n")
    conversational = [{"chosen": [{"role": "user", "content": f"What is {i} + {i}?"},
                                  {"role": "assistant", "content": str(2 * i)}],
                       "rejected": [{"role": "user", "content": f"What is {i} + {i}?"},
                                    {"role": "assistant", "content": str(2 * i + 1)}]} for i in range(6)]
    pq.write_table(pa.Table.from_pylist(conversational), snapshot / "data" / "train-00000-of-00002.parquet")
    plain = [{"prompt": f"Name {i} colours.", "chosen": "Red and blue.", "rejected": "Seven."} for i in range(4)]
    lines = [json.dumps(row) for row in plain + plain[:1]] + ['{"prompt": "broken']  # one duplicate, one bad line
    (snapshot / "data" / "train-00001-of-00002.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.Table.from_pylist(conversational[:2]), snapshot / "data" / "test-00000-of-00001.parquet")
    env = {"SYNPREF_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}

    out = tmp_path / "out"
    proc = run_job("preprocess.py", "data.input=hf://datasets/synpref-test/prefs", f"data.output={out}",
                   "decontam.enabled=false", "ray.num_cpus=2", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "hf://datasets/synpref-test/prefs: config default, split train: 2 files" in proc.stdout
    stats = json.loads((out / "stats.json").read_text())
    stages = {row["stage"]: row for row in stats["stages"]}
    assert stats["records_in"] == 6 + 5 + 1  # the train split's records; the test split is not read
    assert stages["parse"]["quarantined"] == {"bad_json": 1}
    assert stages["dedup"]["dropped"] == {"duplicate": 1}
    assert stats["totals"]["kept"] == 10
    for row in stats["stages"]:
        assert row["in"] == row["kept"] + sum(row["dropped"].values()) + sum(row["quarantined"].values())
    assert stats["reconcile"]["ok"]
    kept = read(out, "kept").to_pylist()
    assert sorted(r["chosen"] for r in kept) == sorted([str(2 * i) for i in range(6)] + ["Red and blue."] * 4)
    assert all(f"/snapshots/{commit}/data/train-" in r["source_record"] for r in kept)

    absent = run_job("preprocess.py", "data.input=hf://datasets/synpref-test/absent", f"data.output={tmp_path / 'o2'}",
                     "decontam.enabled=false", env=env)
    assert absent.returncode == 2
    assert "cannot get hub dataset synpref-test/absent: offline (HF_HUB_OFFLINE=1)" in absent.stderr
    assert "hf download --repo-type dataset synpref-test/absent --local-dir DIR" in absent.stderr
