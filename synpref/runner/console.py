"""What a person sees while a job runs its steps: one progress line per step, one result line.

A step's own output (Ray Data progress, model load reports, vLLM and DeepSpeed logs) goes to its log
file, `<step output>/job.log`; the terminal shows, for each step, what it does, rows done of rows
with the elapsed time and an estimate of the time left (read from the Ray Data progress lines in
the log), or the sub-step it is in (for a step that runs steps of its own), and at the end the
step's result line (stats.json's `result`) or, when it fails, the log's last lines and its path.
`verbose=true` (SYNPREF_VERBOSE=1) streams every step's output to the terminal instead, as before.
"""

from __future__ import annotations

import os
import re
import sys
import time

VERBOSE_ENV = "SYNPREF_VERBOSE"
_PROGRESS = re.compile(r"Total Progress: (\d+)/(\d+|\?)")
_SUBSTEP = re.compile(r"^=== (\w+) -> ")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def set_verbose(on: bool) -> None:
    """A parent job's `verbose` setting, passed on to the steps it runs (they inherit the environment)."""
    if on:
        os.environ[VERBOSE_ENV] = "1"


def minutes(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def log_tail(path: str, size: int = 1 << 16) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def progress(tail: str) -> tuple[int, int | None] | None:
    """The last (rows done, rows in all) a Ray Data stream logged, or None."""
    found = _PROGRESS.findall(tail)
    if not found:
        return None
    done, total = found[-1]
    return int(done), None if total == "?" else int(total)


def substep(tail: str) -> str | None:
    """The step a parent job is in: its last `=== <job> -> ...` line."""
    names = [m.group(1) for line in tail.splitlines() if (m := _SUBSTEP.match(line))]
    return names[-1] if names else None


def status(label: str, started: float, tail: str) -> str:
    elapsed = time.time() - started
    parts = [label]
    inner = substep(tail)
    if inner:
        parts.append(f"[{inner}]")
    done = progress(tail)
    if done and done[1]:
        rows, total = done
        eta = f", ~{minutes(elapsed / rows * (total - rows))} left" if 0 < rows < total else ""
        parts.append(f"{rows}/{total} rows")
        return " ".join(parts) + f"  {minutes(elapsed)}{eta}"
    return " ".join(parts) + f"  {minutes(elapsed)}"


class StepLine:
    """The one line a running step holds on a terminal (redrawn in place); on a log or a pipe it is
    written once at the start and once at the end."""

    def __init__(self, label: str, log: str, job: str = "step", live: bool | None = None):
        self.label, self.log, self.started = label, log, time.time()
        self.live = sys.stdout.isatty() if live is None else live and sys.stdout.isatty()
        self.width = 0
        if not self.live:  # the line a parent's console reads the sub-step from (see `substep`)
            print(f"=== {job} -> {label}  (log: {log})", flush=True)

    def tick(self) -> None:
        if self.live:
            text = status(self.label, self.started, log_tail(self.log))
            sys.stdout.write("\r" + text.ljust(self.width))
            sys.stdout.flush()
            self.width = len(text)

    def done(self, result: str | None) -> None:
        text = f"ok  {self.label}  {minutes(time.time() - self.started)}  {result or ''}".rstrip()
        sys.stdout.write(("\r" + text.ljust(self.width) if self.live else text) + "\n")
        sys.stdout.flush()

    def failed(self, returncode: int) -> None:
        if self.live:
            sys.stdout.write("\r" + " " * self.width + "\r")
        lines = log_tail(self.log, 1 << 14).splitlines()[-25:]
        print(f"FAILED {self.label} (exit {returncode}) after {minutes(time.time() - self.started)}; the last lines "
              f"of {self.log}:\n" + "\n".join("    " + line for line in lines), flush=True)
