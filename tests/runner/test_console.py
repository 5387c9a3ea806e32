"""The console a person reads while steps run (synpref.runner.console): one progress line, one result."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from synpref.record.schema import new_pair, to_table
from synpref.runner import console, steps

REPO = Path(__file__).resolve().parents[2]

RAY_LOG = """2026-12-03 07:58:42,054	INFO logging_progress.py:225 -- Total Progress: 0/?
2026-12-03 07:58:52,054	INFO logging_progress.py:225 -- Total Progress: 50/200
2026-12-03 07:59:02,054	INFO logging_progress.py:231 -- MapBatches(vLLMEngineStageUDF): 50/200
2026-12-03 07:59:12,054	INFO logging_progress.py:225 -- Total Progress: 120/200
"""


def test_progress_and_substep_come_from_the_log_tail():
    assert console.progress(RAY_LOG) == (120, 200)
    assert console.progress("nothing yet") is None
    assert console.progress("Total Progress: 0/?") == (0, None)
    parent = "=== train_rm -> /out/iter-0/rm  (log: x)\nstuff\n=== score -> /out/iter-0/gold_scored  (log: y)\n"
    assert console.substep(parent) == "score"


def test_the_status_line_gives_rows_elapsed_and_time_left(monkeypatch):
    monkeypatch.setattr(console.time, "time", lambda: 1060.0)
    line = console.status("[ 2/12] attributes", started=1000.0, tail=RAY_LOG)
    assert line == "[ 2/12] attributes 120/200 rows  1:00, ~0:40 left"
    assert console.status("Stage 1", 1000.0, "=== annotate -> x") == "Stage 1 [annotate]  1:00"


def test_a_step_writes_its_output_to_job_log_and_prints_one_result_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    rows = [new_pair([{"role": "user", "content": f"q{i}"}], "a", "b", source="t", source_record=f"t:{i}")
            for i in range(3)]
    for row in rows:
        row.update(objectivity="objective", controversiality="low")
    pq.write_table(to_table(rows), tmp_path / "pairs.parquet")
    out = tmp_path / "export"
    stats = steps.run_job("verify", {"action": "export", "data": {"input": str(tmp_path / "pairs.parquet"),
                                                                  "output": str(out)}, "export": {"n": 2}},
                          output=str(out), label="[1/1] export")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("=== verify -> [1/1] export  (log: ") and str(out / "job.log") in printed[0]
    assert printed[-1].startswith("ok  [1/1] export  0:") and printed[-1].endswith(stats["result"])
    assert stats["result"] == "2 of 3 candidate pairs exported for verification"
    assert "candidate pairs exported" in (out / "job.log").read_text()  # the job's own output, kept aside


def test_a_job_keeps_the_terminal_for_its_console_lines_and_logs_the_rest(tmp_path):
    """Another thread's print and a raw write to descriptor 2 (as Ray's error listener and native
    libraries do) land in the job's log; the console's lines reach the real stdout."""
    log = tmp_path / "job.log"
    script = f"""
import os, sys, threading
from synpref.runner import console
with console.others_to_log({str(log)!r}):
    console.say("step line")
    print("ray data progress")
    thread = threading.Thread(target=lambda: print("(raylet) WARNING from a thread", flush=True))
    thread.start()
    thread.join()
    os.write(2, b"native stderr\\n")
print("after")
"""
    env = {k: v for k, v in os.environ.items() if k != console.VERBOSE_ENV}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                          env={**env, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["step line", "after"] and done.stderr == ""
    assert log.read_text().splitlines() == ["ray data progress", "(raylet) WARNING from a thread", "native stderr"]
