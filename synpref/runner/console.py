"""What a person sees while a job runs its steps: one progress line per step, one result line.

A step's own output (Ray Data progress, model load reports, vLLM and DeepSpeed logs) goes to its log
file, `<step output>/job.log`; the terminal shows, for each step, what it does, rows done of rows
with the elapsed time and an estimate of the time left (read from the Ray Data progress lines in
the log), or the sub-step it is in (for a step that runs steps of its own), and at the end the
step's result line (stats.json's `result`) or, when it fails, the log's last lines and its path.
`verbose=true` (SYNPREF_VERBOSE=1) streams every step's output to the terminal instead, as before.

A job that runs steps writes its own output the same way (`others_to_log`): the console's lines keep
the terminal, and whatever else the process prints -- Ray's messages to the driver, Ray Data's logs,
warnings, from any thread -- goes to the job's own job.log.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time

VERBOSE_ENV = "SYNPREF_VERBOSE"
_PROGRESS = re.compile(r"Total Progress: (\d+)/(\d+|\?)")
_SUBSTEP = re.compile(r"^=== (\w+) -> ")


_terminal = None  # the console's stream while others_to_log holds the process's own stdout and stderr


def out():
    """Where the console's lines go: the terminal, even while the rest of the output goes to a log."""
    return _terminal or sys.stdout


def say(text: str) -> None:
    print(text, file=out(), flush=True)


@contextlib.contextmanager
def others_to_log(path: str):
    """Everything the process writes to file descriptors 1 and 2 goes to `path` while this is held
    (Ray prints the raylet's warnings from a thread of its own, so only the descriptors catch it all);
    the console's lines go to a copy of the terminal (`out`). Verbose: nothing changes."""
    global _terminal
    if verbose() or _terminal is not None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    _terminal = os.fdopen(os.dup(1), "w", buffering=1)
    with open(path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        _terminal.close()
        _terminal = None


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
        self.live = out().isatty() if live is None else live and out().isatty()
        self.width = 0
        if not self.live:  # the line a parent's console reads the sub-step from (see `substep`)
            say(f"=== {job} -> {label}  (log: {log})")

    def tick(self) -> None:
        if self.live:
            text = status(self.label, self.started, log_tail(self.log))
            out().write("\r" + text.ljust(self.width))
            out().flush()
            self.width = len(text)

    def done(self, result: str | None) -> None:
        text = f"ok  {self.label}  {minutes(time.time() - self.started)}  {result or ''}".rstrip()
        out().write(("\r" + text.ljust(self.width) if self.live else text) + "\n")
        out().flush()

    def failed(self, returncode: int) -> None:
        if self.live:
            out().write("\r" + " " * self.width + "\r")
        lines = log_tail(self.log, 1 << 14).splitlines()[-25:]
        say(f"FAILED {self.label} (exit {returncode}) after {minutes(time.time() - self.started)}; the last lines "
            f"of {self.log}:\n" + "\n".join("    " + line for line in lines))
