"""wandb logging: offline by default (no key, no network), online with `wandb.mode=online`."""

from __future__ import annotations

import os


def init_wandb(cfg, *, job: str, run_dir: str, config: dict):
    """`cfg`: the `wandb` config block (mode, project, entity, name), a dict or DictConfig."""
    if cfg["mode"] == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    wandb_dir = run_dir if not run_dir.startswith(("s3://", "gs://")) else None
    if wandb_dir:
        os.makedirs(wandb_dir, exist_ok=True)
    return wandb.init(project=cfg["project"], entity=cfg["entity"], mode=cfg["mode"], dir=wandb_dir,
                      name=cfg["name"] or job, job_type=job, config=config, reinit="finish_previous")
