"""Every job run leaves the same folder:

  <output>/config.yaml    the resolved config the run used
  <output>/stats.json     per-stage counts (in = kept + dropped + quarantined) and figures
  <output>/_SUCCESS       written last; a re-run of a finished output does nothing
  <output>/_hydra/        Hydra's log of the run
plus the job's own data folders. A run that died before _SUCCESS is redone from the start.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from synpref.record import storage

SUCCESS = "_SUCCESS"


def config_fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def already_done(output: str, settings: dict, *, overwrite: bool) -> bool:
    """True when `output` holds a finished run of the same settings (then the job skips).

    Raises when it holds a finished run of other settings, unless `overwrite`."""
    marker = storage.join(output, SUCCESS)
    if overwrite or not storage.exists(marker):
        return False
    recorded = storage.read_json(marker).get("fingerprint")
    if recorded == config_fingerprint(settings):
        return True
    raise FileExistsError(
        f"{output} holds a finished run with other settings (fingerprint {recorded}); "
        "point the output key at a new location or add overwrite=true"
    )


def start(output: str, config_yaml: str) -> None:
    storage.write_text(storage.join(output, "config.yaml"), config_yaml)


def finish(output: str, settings: dict, stats: dict) -> None:
    storage.write_json(storage.join(output, "stats.json"), stats)
    storage.write_json(storage.join(output, SUCCESS), {"fingerprint": config_fingerprint(settings)})


def finish_reconciled(output: str, settings: dict, stats: dict) -> None:
    """finish(), then exit non-zero when the stage counts (stats["reconcile"]) do not add up."""
    finish(output, settings, stats)
    if not stats["reconcile"]["ok"]:
        sys.exit("counts do not reconcile: " + "; ".join(stats["reconcile"]["problems"]))


def work_dir(output: str, settings: dict, *, overwrite: bool) -> str:
    """<output>/_work: intermediate results a job resumes from after a crash.

    They are reused only by a run of the same settings: a stale or overwritten one is cleared."""
    work = storage.join(output, "_work")
    stamp = storage.join(work, "fingerprint")
    fingerprint = config_fingerprint(settings)
    if overwrite or not storage.exists(stamp) or storage.read_text(stamp).strip() != fingerprint:
        storage.delete_dir(work)
        storage.write_text(stamp, fingerprint)
    return work


def joins_cluster(address: str | None) -> bool:
    """ray.init will join a running cluster: ray.address is set, or `ray job submit` set RAY_ADDRESS."""
    return bool(address or os.environ.get("RAY_ADDRESS"))


def local_num_cpus(address: str | None, requested: int | None) -> int | None:
    """num_cpus for ray.init: only when it starts a local cluster (Ray refuses num_cpus when joining
    one, and the cluster's own resources apply there)."""
    return None if joins_cluster(address) else requested
