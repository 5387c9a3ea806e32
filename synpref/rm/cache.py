"""The model cache shared by every process and Ray worker on a machine (synpref.rm.weights).

Conversions are written to a temporary folder and renamed into place with a completion marker,
under an ``fcntl`` file lock, so concurrent callers convert once and never see a half-written folder.
The cache is ``$SYNPREF_CACHE``, else ``~/.cache/synpref``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

MARKER = ".synpref_complete.json"
MARKER_FORMAT = 2


class ModelResolutionError(RuntimeError):
    """A model name could not be resolved to a usable local folder."""


def default_cache_dir() -> str:
    """``$SYNPREF_CACHE`` if set, else ``~/.cache/synpref`` (absolute, not created)."""
    env = os.environ.get("SYNPREF_CACHE")
    base = env if env else os.path.join("~", ".cache", "synpref")
    return os.path.abspath(os.path.expanduser(base))


def cache_root(cache_dir: str | None) -> Path:
    root = Path(os.path.expanduser(cache_dir)).absolute() if cache_dir else Path(default_cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (fcntl.flock; released by the OS if the holder dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_marker(folder: Path) -> dict | None:
    try:
        with open(folder / MARKER) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_marker(folder: Path, info: dict) -> None:
    tmp = folder / (MARKER + ".tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MARKER)


def finish_tree(folder: Path) -> None:
    """Flush every file to disk and make the folder readable by every user of a shared cache."""
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(p, 0o644)
        elif p.is_dir():
            os.chmod(p, 0o755)
    os.chmod(folder, 0o755)  # mkdtemp makes it 0700


def install_dir(tmp: Path, final: Path) -> None:
    """Move a finished temp folder to ``final`` (replacing an old one) with renames only."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale(root: Path, name: str) -> None:
    """Remove leftovers of crashed conversions (call only while holding the lock)."""
    for pattern in (f".tmp-{name}-*", f".old-{name}-*"):
        for p in root.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)
