"""Every job run leaves the same folder, and every finished piece of work one marker.

  <output>/config.yaml    the resolved config the run used
  <output>/stats.json     per-stage counts (in = kept + dropped + quarantined) and figures
  <output>/_SUCCESS       written last; a re-run of a finished output does nothing
  <output>/_hydra/        Hydra's log of the run
plus the job's own data folders. Inside a run, a piece of work that a killed run should not redo (a
step's folder, an LLM round, a Stage 1 iteration) is wrapped in `once`: its folder gets the same
`_SUCCESS` marker, stamped with the run's fingerprint, so a re-run of the same settings skips it and
a run of other settings redoes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Callable

from synpref.record import storage
from synpref.runner.errors import OutputHoldsAnotherRun

SUCCESS = "_SUCCESS"


def config_fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def marker(folder: str) -> dict | None:
    """What the folder's completion marker holds ({"fingerprint", ...}), or None when unfinished."""
    path = storage.join(folder, SUCCESS)
    return storage.read_json(path) if storage.exists(path) else None


def mark_finished(folder: str, fingerprint: str, **info) -> None:
    storage.write_json(storage.join(folder, SUCCESS), {"fingerprint": fingerprint, **info})


def once(folder: str, fingerprint: str, build: Callable[[], dict | None]) -> dict:
    """Run `build()` (which writes `folder`) unless `folder` holds a finished result of `fingerprint`.

    A folder left by a killed or differently configured run is cleared first. Returns the dict
    `build` returned (stored in the marker), or the stored one when the work was already done."""
    found = marker(folder)
    if found is not None and found.get("fingerprint") == fingerprint:
        return found.get("result") or {}
    storage.delete_dir(folder)
    result = build() or {}
    mark_finished(folder, fingerprint, result=result)
    return result


def already_done(output: str, settings: dict, *, overwrite: bool) -> bool:
    """True when `output` holds a finished run of the same settings (then the job skips).

    Raises when it holds a finished run of other settings, unless `overwrite`."""
    found = None if overwrite else marker(output)
    if found is None:
        return False
    if found.get("fingerprint") == config_fingerprint(settings):
        return True
    raise OutputHoldsAnotherRun(output, found.get("fingerprint"))


def start(output: str, config_yaml: str) -> None:
    storage.write_text(storage.join(output, "config.yaml"), config_yaml)


def finish(output: str, settings: dict, stats: dict) -> None:
    storage.write_json(storage.join(output, "stats.json"), stats)
    # the time tells a parent whether its step ran or found the run done (steps.run_job)
    mark_finished(output, config_fingerprint(settings), finished_at=time.time())


def joins_cluster(address: str | None) -> bool:
    """ray.init will join a running cluster: ray.address is set, or `ray job submit` set RAY_ADDRESS."""
    return bool(address or os.environ.get("RAY_ADDRESS"))


def local_num_cpus(address: str | None, requested: int | None) -> int | None:
    """num_cpus for ray.init: only when it starts a local cluster (Ray refuses num_cpus when joining
    one, and the cluster's own resources apply there)."""
    return None if joins_cluster(address) else requested
