import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """`gpu` tests need CUDA: where there is none they are skipped, saying so."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker gpu); this machine has none")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The real benchmark files (../shared/benchmarks in CI), from SYNPREF_BENCHMARKS."""
    path = os.environ.get("SYNPREF_BENCHMARKS")
    if not path:
        pytest.skip("SYNPREF_BENCHMARKS is not set: it names the folder of real RM-Bench/JudgeBench/RMB files "
                    "(.ci/run sets it to ../shared/benchmarks)")
    return Path(path)


def run_job(script: str, *overrides: str, timeout: int = 600, env: dict | None = None):
    """Run jobs/<script> as a user does (python jobs/x.py key=value) and return the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, str(REPO / "jobs" / script), *overrides], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})
