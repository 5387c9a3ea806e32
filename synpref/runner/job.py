"""What every job does before and after its own work, written once.

    @hydra.main(config_path="../conf", config_name="score", version_base=None)
    @exits_with_status
    def main(cfg):
        run = JobRun.start(cfg, job="score", output=cfg.data.output, check=check_config)
        if run.done:
            return run.stats
        ... the job's own work ...
        return run.finish(stats)

`start` refuses bad settings (BadConfig, each problem naming its key), computes the settings that
define the result (the config minus how it is executed: `overwrite`, `ray`, `wandb` and the job's own
execution keys), skips a finished run of the same settings, and saves the resolved config. `finish`
writes stats.json, logs the numeric figures to wandb, writes the completion marker, and raises when
the counts do not reconcile. `exits_with_status` turns the typed errors of synpref.runner.errors into
the job's exit status and a message, so library code never exits the process itself.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from synpref.record import storage
from synpref.runner import runs
from synpref.runner.errors import BadConfig, CountsDoNotReconcile, JobError
from synpref.runner.tracking import init_wandb

EXECUTION_KEYS = ("overwrite", "ray", "wandb", "verbose")


def exits_with_status(main: Callable) -> Callable:
    @functools.wraps(main)
    def wrapped(cfg):
        try:
            return main(cfg)
        except JobError as err:
            print(err, file=sys.stderr, flush=True)
            sys.exit(err.exit_status)

    return wrapped


def drop_keys(settings: dict, keys) -> dict:
    """settings without the dotted `keys` (e.g. "engine.actors")."""
    for key in keys:
        *parents, last = key.split(".")
        node = settings
        for part in parents:
            node = node.get(part) or {}
        node.pop(last, None)
    return settings


class JobRun:
    def __init__(self, cfg: DictConfig, *, job: str, output: str, settings: dict, done: bool):
        self.cfg, self.job, self.output, self.settings, self.done = cfg, job, output, settings, done
        self.stats = storage.read_json(storage.join(output, "stats.json")) if done else None

    @classmethod
    def start(cls, cfg: DictConfig, *, job: str, output: str, check: Callable[[DictConfig], list[str]] | None = None,
              execution_keys: tuple[str, ...] = (), extra: dict | None = None,
              clear_on_overwrite: bool = False) -> "JobRun":
        """`extra`: what else defines the result beside the config (absolute input paths, file digests);
        `clear_on_overwrite`: with overwrite=true, empty the output first (a job whose steps write
        under it, so every step is redone)."""
        problems = check(cfg) if check else []
        if problems:
            raise BadConfig(problems, job=job)
        output = storage.absolute(output)
        settings = {**(extra or {}), **OmegaConf.to_container(cfg, resolve=True)}
        drop_keys(settings, EXECUTION_KEYS + tuple(execution_keys))
        done = runs.already_done(output, settings, overwrite=bool(cfg.get("overwrite")))
        if done:
            print(f"{output} already holds this run (see {output}/stats.json); overwrite=true redoes it")
        else:
            if clear_on_overwrite and cfg.get("overwrite"):
                storage.delete_dir(output)
            runs.start(output, OmegaConf.to_yaml(cfg, resolve=True))
        return cls(cfg, job=job, output=output, settings=settings, done=done)

    @property
    def fingerprint(self) -> str:
        return runs.config_fingerprint(self.settings)

    def finish(self, stats: dict, *, log: Callable | None = None, track: bool = True) -> dict:
        """Write the run's stats and marker; `log(wandb_run)` logs more than the numeric stats;
        track=False when the job's workers keep their own wandb run (training)."""
        stats = {"job": self.job, "output": self.output, **stats}
        wandb_cfg = self.cfg.get("wandb") if track else None
        run = init_wandb(wandb_cfg, job=self.job, run_dir=self.output, config=self.settings) if wandb_cfg else None
        if run:
            run.summary.update({k: v for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
            if log:
                log(run)
            run.finish()
        reconcile = stats.get("reconcile")
        if reconcile is not None and not reconcile["ok"]:
            # stats.json says what does not add up; no completion marker, so a re-run does the work again
            storage.write_json(storage.join(self.output, "stats.json"), stats)
            raise CountsDoNotReconcile(reconcile["problems"])
        runs.finish(self.output, self.settings, stats)
        self.stats = stats
        return stats
