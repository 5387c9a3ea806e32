"""A score run whose driver is killed part way resumes where it stopped (jobs/score.py, Ray Data's
checkpointing keyed by pair_id): the re-run scores only the pairs the killed run had not written, and
the output holds every input row exactly once, with the scores a run without the kill gives.

The issue asks for 1M pairs; on this 2-core machine that is about an hour of scoring per run, so the
test uses RESUME_PAIRS (many input files, so the stream is long) and bench/curation_scale.py the size.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synpref.demo.tiny_models import build_tiny_model
from synpref.record.pairs_io import read_pairs
from synpref.record.resumable import CHECKPOINTS, committed_pairs
from synpref.record.schema import new_pair, to_table
from synpref.rm.scorer import RewardScorer
from tests.conftest import REPO, run_job

pytestmark = pytest.mark.e2e
RESUME_PAIRS = 3000
FILES = 30


def write_pool(folder: Path, n: int) -> list[dict]:
    folder.mkdir(parents=True)
    rows = [new_pair([{"role": "user", "content": f"Question {i}: why is the sky blue?"}], f"Because {i} scatters",
                     f"No idea {i}", source="t", source_record=f"t:{i}") for i in range(n)]
    rows += [{**rows[0], "status": "dropped", "stage": "dedup", "reason": "duplicate", "source_record": "t:dup"}]
    per_file = len(rows) // FILES + 1
    for f in range(FILES):
        pq.write_table(to_table(rows[f * per_file:(f + 1) * per_file]), folder / f"part-{f:03d}.parquet")
    return rows


def test_killed_driver_resumes_and_writes_every_pair_once(tmp_path):
    rm = build_tiny_model(tmp_path / "rm", kind="seq_cls", seed=0)
    rows = write_pool(tmp_path / "in", RESUME_PAIRS)
    output = tmp_path / "out"
    args = [f"data.input={tmp_path / 'in'}", f"data.output={output}", f"models=[{{name: rm, path: {rm}}}]",
            "max_length=64", "batch_size=50", "resume_block_pairs=150", "wandb.mode=disabled"]
    job = subprocess.Popen([sys.executable, str(REPO / "jobs" / "score.py"), *args], cwd=REPO,
                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 600, 0
    while done < RESUME_PAIRS * 0.45:
        assert job.poll() is None, "the score run ended before the kill"
        assert time.time() < deadline
        time.sleep(0.5)
        done = committed_pairs(str(output / CHECKPOINTS))
    os.killpg(job.pid, signal.SIGKILL)  # the driver and the local cluster it started
    job.wait()
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
    assert not (output / "_SUCCESS").exists()

    proc = run_job("score.py", *args, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = json.loads((output / "stats.json").read_text())
    redone = RESUME_PAIRS - stats["resumed_after_pairs"]
    assert stats["resumed_after_pairs"] >= done and redone < 0.6 * RESUME_PAIRS, stats["resumed_after_pairs"]
    assert stats["reconcile"]["ok"] and not (output / CHECKPOINTS).exists()

    written = read_pairs(str(output / "pairs"), status=None)
    assert Counter(r["status"] for r in written) == {"kept": RESUME_PAIRS, "dropped": 1}
    kept = {r["pair_id"]: r for r in written if r["status"] == "kept"}
    assert len(kept) == RESUME_PAIRS  # every pair exactly once
    sample = [kept[r["pair_id"]] for r in rows[:RESUME_PAIRS:97]]
    scorer = RewardScorer(rm)
    chosen = scorer.score([(r["conversation"], r["chosen"]) for r in sample], 64)
    for row, expected in zip(sample, chosen):
        assert abs(row["rm_scores"][0]["r_chosen"] - expected) < 1e-4
