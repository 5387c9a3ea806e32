"""Peak memory of a job's processes by kind, with each process's own heap and its object-store pages apart.

A Ray worker maps the node's object store (/dev/shm/plasma...) into its address space, and every store
page it writes or reads counts in its RSS and, if no other process touched it, in its USS. So USS alone
cannot say whether a worker grows or only touches more of the store. From /proc/<pid>/smaps:
  heap     = private pages (clean + dirty) outside the store's mappings: what the process itself holds;
  store    = resident pages of the store's mappings in /dev/shm: bounded by the store's configured size;
  fallback = resident pages of the store's fallback files: when the store is full, Ray allocates new
             objects in files it maps from the spill directory (<dir>/plasmaXXXXXX), beyond the
             configured size. Counted as heap, they would make a worker seem to grow with the input.
Kinds: "driver" (the job's own process) and each Ray worker by its title (ray::SeenKeysActor,
ray::MapWorker(MapBatches(ScorePairs)), ray::ReadFiles->..., idle workers left out). Ray reuses a task
worker for tasks of other kinds, and its heap keeps what the earlier tasks left: each peak says which
kinds its process ran before (a Write task run by a former read worker shows the read's heap).
"""

from __future__ import annotations

import threading
import time

import psutil

STORE_DIRECTORY = "/dev/shm/"
STORE_FILE = "plasma"  # Ray's store files, in /dev/shm and as fallback in the spill directory


def pages_of(smaps) -> dict[str, int]:
    """{"heap", "store", "fallback"} bytes from the lines of a /proc/<pid>/smaps."""
    pages = {"heap": 0, "store": 0, "fallback": 0}
    mapping = "heap"
    for line in smaps:
        field, _, rest = line.partition(":")
        if " " in field or "-" in field:  # a mapping's header line: "start-end perms offset dev inode [path]"
            parts = line.split(maxsplit=5)
            path = parts[5].strip() if len(parts) > 5 else ""
            is_store = path.rpartition("/")[2].startswith(STORE_FILE)
            mapping = ("store" if path.startswith(STORE_DIRECTORY) else "fallback") if is_store else "heap"
        elif mapping != "heap" and field == "Rss":
            pages[mapping] += int(rest.split()[0]) * 1024
        elif mapping == "heap" and field in ("Private_Clean", "Private_Dirty"):
            pages["heap"] += int(rest.split()[0]) * 1024
    return pages


def process_pages(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/smaps") as smaps:
        return pages_of(smaps)


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
        self.peak: dict[str, dict] = {}
        self.kinds_held: dict[int, list[str]] = {}  # pid -> the kinds it has been, in order
        self._done = threading.Event()

    def note(self, kind: str, pid: int) -> None:
        try:
            pages = process_pages(pid)
        except (OSError, ValueError):
            return
        held = self.kinds_held.setdefault(pid, [])
        if kind not in held:
            held.append(kind)
        entry = self.peak.setdefault(kind, {"heap": 0, "store": 0, "fallback": 0, "ran_before": []})
        if pages["heap"] > entry["heap"]:
            entry["heap"], entry["ran_before"] = pages["heap"], held[:held.index(kind)]
        entry["store"] = max(entry["store"], pages["store"])
        entry["fallback"] = max(entry["fallback"], pages["fallback"])

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


def kinds_run_before(peak: dict) -> str:
    """The kinds the peak's process ran before this one, as a report names them ("" for none)."""
    return ", ".join(k[:40] for k in peak.get("ran_before") or [])


def format_peak(kind: str, peak: dict) -> str:
    """One report line: the kind's peak heap and store pages, and what its process ran before."""
    before = kinds_run_before(peak)
    earlier = f"   (its process ran {before} before)" if before else ""
    sizes = f"heap {peak['heap'] / 1e6:>8.0f} MB   store pages {peak['store'] / 1e6:>8.0f} MB"
    if peak.get("fallback"):
        sizes += f" + fallback {peak['fallback'] / 1e6:.0f} MB (store full)"
    return f"    {kind[:60]:<60} {sizes}{earlier}"
