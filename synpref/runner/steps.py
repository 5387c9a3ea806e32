"""Run one of jobs/*.py as a step of a bigger job (Stage 1, Stage 2, the whole pipeline).

A step is the job itself, run in a child process on a config file: conf/<job>.yaml merged with the
step's settings. So a step does exactly what a user's own `python jobs/<job>.py ...` would, it writes
the same output folder, and a re-run skips it when that folder already holds the same finished run
(synpref.runner.runs). Children join the parent's Ray cluster through RAY_ADDRESS (`ray job submit`
sets it; `shared_cluster` starts a local one and sets it), so a step costs no cluster start-up.

The merge is strict: a key the child job does not have is an error naming the key and the job, so a
misspelt setting in a parent's block (or on its command line) fails at once instead of being ignored.
`check_blocks` runs that check over every step block of a parent config before any step starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from synpref.record import storage
from synpref.runner import console, runs
from synpref.runner.errors import BadConfig, StepFailed

REPO = Path(__file__).resolve().parents[2]
STEP_CONFIG = "step_config"  # <output>/step_config/<job>.yaml: the config a step ran on

# the blocks of a parent config that are merged over a child job's config, per parent job
STEP_BLOCKS: dict[str, dict[str, str]] = {
    "pipeline": {"preprocess": "preprocess", "attributes": "annotate", "stage1": "stage1", "stage2": "stage2",
                 "final_rm": "train_rm", "heldout_score": "score", "serve": "serve_rm", "evaluate": "evaluate",
                 "verify": "verify"},
    "stage1": {"train_rm": "train_rm", "score": "score", "annotate": "annotate", "verify": "verify"},
    "stage2": {"train_rm": "train_rm", "score": "score", "annotate": "annotate"},
}


def as_dict(part: dict | DictConfig, resolve: bool = True) -> dict:
    return OmegaConf.to_container(part, resolve=resolve) if isinstance(part, DictConfig) else dict(part)


def merged(*parts: dict | DictConfig) -> dict:
    """Blocks of settings merged in order (later wins), as a plain dict, before any job's keys apply."""
    out = OmegaConf.create({})
    for part in parts:
        out = OmegaConf.merge(out, as_dict(part))
    return OmegaConf.to_container(out)


def job_config(job: str, settings: dict | DictConfig, *, where: str | None = None) -> DictConfig:
    """conf/<job>.yaml with `settings` merged over it, strictly: an unknown key raises BadConfig
    naming it, the job, and `where` the settings came from."""
    base = OmegaConf.load(REPO / "conf" / f"{job}.yaml")
    OmegaConf.set_struct(base, True)
    for block in STEP_BLOCKS.get(job, {}):  # a step block may name any key of its child job: check_blocks checks it
        if isinstance(base.get(block), DictConfig):
            OmegaConf.set_struct(base[block], False)
    try:
        out = OmegaConf.merge(base, as_dict(settings))
    except ConfigKeyError as err:
        key = getattr(err, "full_key", None) or str(err).splitlines()[0]
        raise BadConfig([f"{where or 'a step block'}: jobs/{job}.py has no key '{key}' "
                         f"(conf/{job}.yaml lists its keys)"], job=job) from None
    OmegaConf.set_struct(out, False)
    return out


def check_blocks(job: str, cfg: DictConfig | dict, prefix: str = "") -> None:
    """Merge every step block of `cfg` (a config of `job`) over its child job's config, recursively,
    so a misspelt key anywhere fails before the first step runs."""
    cfg = as_dict(cfg, resolve=False)  # a parent's own interpolations (its output, hydra's dir) stay as they are
    problems = []
    for block, child in STEP_BLOCKS.get(job, {}).items():
        if cfg.get(block) is None:
            continue
        where = f"{prefix}{block}"
        try:
            child_cfg = job_config(child, cfg[block], where=where)
            check_blocks(child, OmegaConf.to_container(child_cfg), prefix=f"{where}.")
        except BadConfig as err:
            problems += err.problems
    if problems:
        raise BadConfig(problems, job=job)


def _config_folder(output: str, job: str) -> tuple[Path, bool]:
    """Where the step's config file goes: <output>/step_config/ for a local output (kept beside the
    step's results), a temporary folder for a storage URI (removed after the step)."""
    if storage.is_uri(output):
        return Path(tempfile.mkdtemp(prefix=f"synpref-{job}-")), True
    folder = Path(storage.absolute(output)) / STEP_CONFIG
    folder.mkdir(parents=True, exist_ok=True)
    return folder, False


def write_step_config(job: str, settings: dict | DictConfig, output: str, *, where: str | None = None) -> tuple[list[str], Path, bool]:
    """(the command line running jobs/<job>.py on its merged config, the config folder, whether that
    folder is temporary)."""
    folder, temporary = _config_folder(output, job)
    config = job_config(job, settings, where=where)
    OmegaConf.save(config, folder / f"{job}.yaml")
    if temporary:  # the local copy is for Hydra; the step's folder keeps the config it ran on
        storage.write_text(storage.join(output, STEP_CONFIG, f"{job}.yaml"), OmegaConf.to_yaml(config))
    command = [sys.executable, str(REPO / "jobs" / f"{job}.py"), "--config-path", str(folder), "--config-name", job]
    return command, folder, temporary


def log_path(output: str, name: str) -> str:
    """Where a step's output goes: <output>/<name>.log, or a file in the temp folder for a URI output."""
    if storage.is_uri(output):
        return os.path.join(tempfile.gettempdir(), f"synpref-{name}-{os.getpid()}-{int(time.time())}.log")
    os.makedirs(storage.absolute(output), exist_ok=True)
    return os.path.join(storage.absolute(output), f"{name}.log")


def run_job(job: str, settings: dict | DictConfig, *, output: str, where: str | None = None,
            label: str | None = None, live: bool | None = None) -> dict:
    """Run jobs/<job>.py on conf/<job>.yaml + settings; return the stats.json it wrote to `output`.

    The step's output goes to <output>/job.log and the terminal shows one line for it (synpref.runner.console;
    live=False: a start and an end line, for steps that run side by side), or, with SYNPREF_VERBOSE=1,
    everything. Raises StepFailed naming the job, its command and its exit
    status when it fails."""
    command, folder, temporary = write_step_config(job, settings, output, where=where)
    finished_before = runs.marker(output)
    try:
        if console.verbose():
            print(f"\n=== {job} -> {output}", flush=True)
            returncode = subprocess.run(command, cwd=REPO).returncode
        else:
            log = log_path(output, "job")
            line = console.StepLine(label or output, log, job=job, live=live)
            with open(log, "w") as sink:
                child = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
                while child.poll() is None:
                    line.tick()
                    time.sleep(1.0)
            returncode = child.returncode
            if returncode:
                line.failed(returncode)
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        if not console.verbose() and storage.is_uri(output):  # the log joins the step's folder
            with open(log, encoding="utf-8", errors="replace") as f:
                storage.write_text(storage.join(output, "job.log"), f.read())
            os.remove(log)
    if returncode:
        raise StepFailed(job, returncode, command)
    stats = storage.read_json(storage.join(output, "stats.json"))
    if not console.verbose():
        skipped = finished_before is not None and runs.marker(output) == finished_before
        line.done(("already done, not rerun: " if skipped else "") + (stats.get("result") or ""))
    return stats


def shared_cluster(address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at `address` / RAY_ADDRESS, or start a local one, and point children at it."""
    import ray

    from synpref.runner import runs

    if not ray.is_initialized():
        quiet = {} if console.verbose() else {"logging_level": "ERROR", "log_to_driver": False}
        ray.init(address=address, num_cpus=runs.local_num_cpus(address, num_cpus), **quiet)
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
