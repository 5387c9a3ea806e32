"""Where a machine's CPU went during a window: CPU seconds of every process, sampled in a thread.

A bench starts a CpuTime before the work, notes the window it cares about (say, from an engine's start
to its last answer) and asks `cores(t0, t1)`: per process, the cores it used on average in that
window (CPU seconds / wall seconds, between the samples nearest the window's ends). A process that
starts or ends inside the window counts from its first or up to its last sample there (one that ends
just before its next sample loses that last second's work: sample more often for short windows).
"""

from __future__ import annotations

import threading
import time

import psutil


def title_of(proc: psutil.Process) -> str:
    cmdline = proc.info.get("cmdline") or []
    return " ".join(cmdline)[:300] or proc.info.get("name") or "?"


class CpuTime(threading.Thread):
    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []  # (time, {pid: (title, cpu s)})
        self._done = threading.Event()

    def sample(self) -> None:
        now, seen = time.time(), {}
        for proc in psutil.process_iter(["cmdline", "name", "cpu_times"]):
            times = proc.info.get("cpu_times")
            if times is not None:
                seen[proc.pid] = (title_of(proc), times.user + times.system)
        self.samples.append((now, seen))

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.sample()

    def cores(self, t0: float, t1: float) -> tuple[float, dict[int, tuple[str, float]]]:
        """(the window's wall seconds, {pid: (title, cores used on average)}) between the samples nearest
        t0 and t1."""
        start = min(range(len(self.samples)), key=lambda i: abs(self.samples[i][0] - t0))
        end = min(range(len(self.samples)), key=lambda i: abs(self.samples[i][0] - t1))
        window = self.samples[start:end + 1]
        first_seen, last_seen = {}, {}
        for _, seen in window:
            for pid, (title, cpu) in seen.items():
                first_seen.setdefault(pid, cpu)
                last_seen[pid] = (title, cpu)
        wall = window[-1][0] - window[0][0]
        return wall, {pid: (title, (cpu - first_seen[pid]) / wall) for pid, (title, cpu) in last_seen.items()
                      if cpu > first_seen[pid]}


def grouped(used: dict[int, tuple[str, float]], group_of) -> dict[str, float]:
    """Cores per group, where group_of(pid, title) names a process's group."""
    out: dict[str, float] = {}
    for pid, (title, cores) in used.items():
        group = group_of(pid, title)
        out[group] = out.get(group, 0.0) + cores
    return out
