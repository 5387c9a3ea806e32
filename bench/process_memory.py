"""Peak memory of a job's processes by kind, with each process's own heap and its object-store pages apart.

A Ray worker maps the node's object store (/dev/shm/plasma...) into its address space, and every store
page it writes or reads counts in its RSS and, if no other process touched it, in its USS. So USS alone
cannot say whether a worker grows or only touches more of the store. From /proc/<pid>/smaps:
  heap  = private pages (clean + dirty) outside the store's mappings: what the process itself holds;
  store = resident pages of the store's mappings: bounded by the store's configured size.
Kinds: "driver" (the job's own process) and each Ray worker by its title (ray::SeenKeysActor,
ray::MapWorker(MapBatches(ScorePairs)), ray::ReadFiles->..., idle workers left out).
"""

from __future__ import annotations

import threading
import time

import psutil

STORE_MAPPING = "/dev/shm/plasma"


def heap_and_store(pid: int) -> tuple[int, int]:
    heap = store = 0
    in_store = False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            field, _, rest = line.partition(":")
            if " " in field or "-" in field:  # a mapping's header line: "start-end perms offset dev inode path"
                in_store = STORE_MAPPING in line
            elif in_store and field == "Rss":
                store += int(rest.split()[0]) * 1024
            elif not in_store and field in ("Private_Clean", "Private_Dirty"):
                heap += int(rest.split()[0]) * 1024
    return heap, store


def kind_of(title: str) -> str | None:
    """A worker's kind from its process title: ray::SeenKeysActor.add -> SeenKeysActor (an actor's
    title names the method it runs; the actor is the kind)."""
    if not title.startswith("ray::") or title.startswith("ray::IDLE"):
        return None
    name = title.split()[0][len("ray::"):]
    head, dot, method = name.rpartition(".")
    return head if dot and method.isidentifier() and head and ("(" not in method) else name


class PeakMemory(threading.Thread):
    """Samples every `interval` s until stop(); peak[kind] = {"heap": bytes, "store": bytes}, the largest
    single process of that kind (and "driver" for `driver_pid`)."""

    def __init__(self, driver_pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.driver_pid, self.interval = driver_pid, interval
        self.peak: dict[str, dict[str, int]] = {}
        self._done = threading.Event()

    def note(self, kind: str, pid: int) -> None:
        try:
            heap, store = heap_and_store(pid)
        except (OSError, ValueError):
            return
        entry = self.peak.setdefault(kind, {"heap": 0, "store": 0})
        entry["heap"], entry["store"] = max(entry["heap"], heap), max(entry["store"], store)

    def run(self) -> None:
        while not self._done.is_set():
            self.note("driver", self.driver_pid)
            for proc in psutil.process_iter(["pid", "cmdline"]):
                kind = kind_of(" ".join(proc.info["cmdline"] or []))
                if kind:
                    self.note(kind, proc.info["pid"])
            time.sleep(self.interval)

    def stop(self) -> dict[str, dict[str, int]]:
        self._done.set()
        self.join()
        return self.peak
