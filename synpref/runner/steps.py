"""Run one of jobs/*.py as a step of a bigger job (Stage 1, Stage 2, the whole pipeline).

A step is the job itself, run in a child process on a config file: conf/<job>.yaml merged with the
step's settings. So a step does exactly what a user's own `python jobs/<job>.py ...` would, it writes
the same output folder, and a re-run skips it when that folder already holds the same finished run
(synpref.runner.runs). Children join the parent's Ray cluster through RAY_ADDRESS (`ray job submit` sets it;
`shared_cluster` starts a local one and sets it), so a step costs no cluster start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from synpref.record import storage

REPO = Path(__file__).resolve().parents[2]


class StepFailed(RuntimeError):
    def __init__(self, job: str, returncode: int, command: list[str]):
        super().__init__(f"step {job} failed (exit {returncode}); rerun it by hand: {' '.join(command)}")
        self.returncode = returncode


def merged(*parts: dict | DictConfig) -> DictConfig:
    """Plain (non-struct) merge of config blocks: a job's own block may add keys its parent never named."""
    out = OmegaConf.create({})
    for part in parts:
        out = OmegaConf.merge(out, OmegaConf.to_container(part, resolve=True) if isinstance(part, DictConfig) else part)
    return out


def job_config(job: str, settings: dict | DictConfig) -> DictConfig:
    """conf/<job>.yaml with `settings` merged over it (the step's config, before Hydra resolves it)."""
    return OmegaConf.merge(OmegaConf.load(REPO / "conf" / f"{job}.yaml"), merged(settings))


def job_command(job: str, settings: dict | DictConfig) -> list[str]:
    """The command line running jobs/<job>.py on conf/<job>.yaml + settings (saved to a config file)."""
    folder = Path(tempfile.mkdtemp(prefix=f"synpref-{job}-"))
    OmegaConf.save(job_config(job, settings), folder / f"{job}.yaml")
    return [sys.executable, str(REPO / "jobs" / f"{job}.py"), "--config-path", str(folder), "--config-name", job]


def run_job(job: str, settings: dict | DictConfig, *, output: str) -> dict:
    """Run jobs/<job>.py on conf/<job>.yaml + settings; return the stats.json it wrote to `output`.

    Raises RuntimeError naming the job, its config file and its exit status when it fails."""
    command = job_command(job, settings)
    print(f"\n=== {job} -> {output}", flush=True)
    started = time.time()
    result = subprocess.run(command, cwd=REPO)
    if result.returncode:
        raise StepFailed(job, result.returncode, command)
    print(f"=== {job} done in {time.time() - started:.0f} s", flush=True)
    return storage.read_json(storage.join(output, "stats.json"))


def shared_cluster(address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at `address` / RAY_ADDRESS, or start a local one, and point children at it."""
    import ray

    from synpref.runner import runs

    if not ray.is_initialized():
        ray.init(address=address, num_cpus=runs.local_num_cpus(address, num_cpus))
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
