"""The whole curation loop end to end on local Ray (jobs/pipeline.py), and its two fault tests:
the pipeline killed in the middle of Stage 2 and run again (the module's run is that second run),
and a scoring actor killed mid-stream.

A reduced demo world of the learnable families, SmolLM2-135M as annotator, logprob judge and reward
model backbone (its top two blocks trained, on a few dozen pairs), one Stage 1 iteration. Sized so
that curation shows: the judge is right on refusal and format, the reward models learn the
learnable families, so Stage 2's curated pool is clearly more precise than the pool.
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

# the first test also pays for the module's two pipeline runs (the killed one and the one to the end,
# about 15 min here): the suite-wide 900 s pytest timeout is too short for them on a 2-core box
pytestmark = [pytest.mark.e2e, pytest.mark.loop, pytest.mark.timeout(2700)]

RM_TRAIN = {"train.epochs": 2, "train.max_length": 128, "train.trainable_layers": 2}
LEARNABLE = "[recall,capitals,format,refusal]"


def rm_overrides(prefix: str) -> list[str]:
    # ++: set the key whether or not the parent config's block names it (Hydra's add-or-override)
    return [f"++{prefix}.{k}={v}" for k, v in RM_TRAIN.items()]


def pipeline_overrides(root: Path) -> list[str]:
    return [f"output={root / 'run'}", "world.pairs=64", "world.heldout=16", f"world.families={LEARNABLE}",
            "gold_seed=16", "++stage1.iterations=1", "++stage1.seed_silver=24", "++stage1.k_max=2",
            "++stage1.human.per_iteration=8", "++stage1.max_labelled_per_iteration=16",
            "++stage1.annotate.examples.k=2", "++stage2.annotate.examples.k=2",  # shorter judge prompts
            *rm_overrides("stage1.train_rm"), *rm_overrides("stage2.train_rm"), *rm_overrides("final_rm"),
            "attributes.annotator.max_tokens=128", "serve.http.port=8472"]


def rows(folder: Path, columns=("pair_id", "status", "reason", "chosen", "rejected", "rm_scores")) -> list[dict]:
    return pads.dataset(folder, format="parquet", partitioning="hive").to_table(columns=list(columns)).to_pylist()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The pipeline, killed with every process it started once Stage 2's RMs have scored (judging is
    next), then run again to the end: (root, the second run, both runs' seconds)."""
    root = tmp_path_factory.mktemp("loop")
    build_tiny_model(root / "tiny-rm", kind="seq_cls")  # the scoring fault test's model
    started = time.time()
    with open(root / "killed-run.log", "w") as log:
        job = subprocess.Popen([sys.executable, str(REPO / "jobs" / "pipeline.py"), *pipeline_overrides(root)],
                               cwd=REPO, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 2100
        while not (root / "run" / "stage2" / "scored" / "_SUCCESS").exists():
            assert job.poll() is None, "the pipeline ended before the kill: " + (root / "killed-run.log").read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(1)
        os.killpg(job.pid, signal.SIGKILL)  # the driver and every step it started
        job.wait()
    assert not (root / "run" / "stage2" / "_SUCCESS").exists()
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)  # its local cluster
    proc = run_job("pipeline.py", *pipeline_overrides(root), timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return root, proc, time.time() - started


def test_pipeline_runs_every_stage_and_reports(loop):
    root, proc, _ = loop
    run = root / "run"
    report = json.loads((run / "report.json").read_text())
    stages = report["truth"]["stages"]
    pool = stages["pool (preprocessed)"]["overall"]
    assert pool["pairs"] == 64
    # the demo world's noise is 25%: the pool's own labels are right for 3 in 4 pairs
    assert pool["precision"] == pytest.approx(0.75, abs=0.01)
    assert stages["D_gold (humans)"]["overall"]["pairs"] >= 16  # seed + one iteration's verdicts, minus undecidables
    kept = stages["Stage 2 kept (curated)"]["overall"]
    assert kept["pairs"] >= 16 and kept["recall"] > 0.3
    # curation curates: the curated pool is clearly more precise than the pool it came from
    assert kept["precision"] >= pool["precision"] + 0.1, stages
    assert set(report["final"]) == {"raw", "curated", "ceiling"}  # ablation.sets: the default
    heldout = report["truth"]["heldout"]
    assert all(heldout[name]["overall"]["pairs"] == 16 for name in report["final"])
    assert report["verdict"].startswith("Curation helped") and report["served"]["heldout_rm_bench_score"] is not None
    markdown = (run / "report.md").read_text()
    assert markdown.startswith("# synpref curation report\n\nCuration helped")
    assert (run / "precision_recall_by_stage.png").exists() and (run / "heldout_accuracy_by_training_set.png").exists()
    assert (run / "stage1" / "gold_accuracy.png").exists()
    results = json.loads((run / "evaluate" / "results.json").read_text())
    assert results["items_per_benchmark"]["rm_bench"] == 16  # the held-out pairs, scored over HTTP
    # the judges are measured on D_gold in Stage 1, and Stage 2 labels with the threshold chosen there
    calibrated = json.loads((run / "stage1" / "iter-0" / "labelled" / "stats.json").read_text())
    assert calibrated["calibration"]["pairs"] >= 16 and calibrated["calibration"]["position_bias_rate"] is not None
    judged = json.loads((run / "stage2" / "judged" / "stats.json").read_text())
    assert judged["judge_threshold"] == calibrated["judge_threshold"]


def test_no_curation_step_is_given_the_truth(loop):
    """Which step configs name the demo world's folder, and for what: the world's raw pool and
    benchmarks (preprocess, evaluation), the simulated annotator (Stage 1), and the two ablation
    steps that are the truth by construction (the ceiling's training set, the held-out pairs)."""
    import yaml

    root, _, _ = loop
    world = str(root / "run" / "world")
    allowed = {("preprocess", "data.input"), ("preprocess", "decontam.benchmarks"), ("stage1", "human.simulate"),
               ("evaluate", "benchmarks.root")}
    seen = set()

    def walk(node, prefix=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            for value in node:
                yield from walk(value, prefix)
        elif isinstance(node, str):
            yield prefix[:-1], node

    for config in (root / "run").rglob("step_config/*.yaml"):
        job = config.stem
        for key, value in walk(yaml.safe_load(config.read_text())):
            assert "truth.jsonl" not in value, (config, key)
            if world in value and key != "hydra.run.dir":
                entry = (job, key)
                if job == "train_rm" and key == "data.train":
                    assert value.endswith("world/ceiling/pairs"), (config, value)
                elif job == "score" and key == "data.input":
                    assert value.endswith("world/heldout/pairs"), (config, value)
                else:
                    assert entry in allowed, (config, key, value)
                seen.add(entry)
    assert ("stage1", "human.simulate") in seen and ("train_rm", "data.train") in seen


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


def test_pipeline_killed_in_stage2_then_rerun_redoes_only_the_rest(loop):
    root, proc, _ = loop
    assert proc.stdout.count("already done, not rerun") >= 5, proc.stdout  # every step before Stage 2
    # Stage 2's own log from the second run: the gold RM and the scores were not redone
    assert (root / "run" / "stage2" / "job.log").read_text().count("already done, not rerun") >= 2
    stats = json.loads((root / "run" / "stage2" / "stats.json").read_text())
    decided = [r for r in rows(root / "run" / "stage2" / "pairs") if not (r["reason"] or "").startswith("flipped:")]
    counts = Counter(r["pair_id"] for r in decided)
    assert len(counts) == stats["pairs_in"] and set(counts.values()) == {1}


def scoring_actor_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ScorePairs" in line and "ray::" in line]


def test_scoring_actor_killed_mid_stream_gives_identical_output(loop, tmp_path):
    root, _, _ = loop
    # the pool, scored one pair per actor call so the stream is long enough to kill it half way
    score = ["score.py", f"data.input={root / 'run' / 'pool' / 'pairs'}", "batch_size=2",
             f"models=[{{name: rm, path: {root / 'tiny-rm'}}}]", "max_length=128",
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
