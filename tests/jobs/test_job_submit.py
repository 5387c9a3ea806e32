"""`ray job submit` against a real local head, exactly as a user submits to a cluster."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from synpref.demo.pool import write_demo_pool

pytestmark = pytest.mark.e2e
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    port, dashboard = free_port(), free_port()
    # as a user with the venv activated: `python` in the entrypoint is the venv's
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    subprocess.run([RAY, "start", "--head", f"--port={port}", f"--dashboard-port={dashboard}", "--num-cpus=2",
                    "--dashboard-host=127.0.0.1", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        # stops every Ray on this machine: run this test alone (CI runs tests one at a time)
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_submit_preprocess_with_overrides(ray_head, tmp_path):
    address, env = ray_head
    write_demo_pool(tmp_path / "raw", n_pairs=50)
    out = tmp_path / "out"
    submit = (
        [RAY, "job", "submit", "--address", address, "--working-dir", ".",
         "--runtime-env-json", json.dumps({"excludes": [".git", ".venv", "outputs"]}), "--",
         "python", "jobs/preprocess.py", f"data.input={tmp_path / 'raw'}", f"data.output={out}",
         f"decontam.benchmarks=[{tmp_path / 'benchmarks'}]", "data.binarize=best_vs_worst", "batch_size=64"])
    for _ in range(24):  # the head's job agent registers a little after `ray start` returns
        proc = subprocess.run(submit, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        if "No available agent" not in proc.stderr + proc.stdout:
            break
        time.sleep(5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reconcile"]["ok"]
    config = (out / "config.yaml").read_text()
    assert "binarize: best_vs_worst" in config and "batch_size: 64" in config  # the overrides reached the job
    # best_vs_worst: each 3-response rated record gives one pair, not two
    stages = {row["stage"]: row for row in stats["stages"]}
    assert stages["binarize"]["in"] < stats["records_in"] + 20
    assert (out / "pairs" / "status=kept").is_dir() and (out / "_SUCCESS").exists()
