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
