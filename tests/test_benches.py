"""The benches' own parts that run without an engine: every bench parses its arguments, the annotation
bench builds its requests with the job's builder, and the CPU sampler finds a busy process."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHES = sorted(p for p in (REPO / "bench").glob("*.py") if p.stem not in ("process_memory", "process_cpu"))


@pytest.mark.parametrize("bench", BENCHES, ids=lambda p: p.stem)
def test_every_bench_parses_its_arguments(bench):
    done = subprocess.run([sys.executable, str(bench), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_annotation_bench_builds_the_jobs_requests():
    sys.path.insert(0, str(REPO))
    from bench import annotate_throughput

    settings = annotate_throughput.engine_settings(4096)
    requests = annotate_throughput.requests(5, 64, settings)
    assert len({r["question_id"] for r in requests}) == 5
    assert len({r["messages_json"] for r in requests}) == 5
    for request in requests:
        messages = json.loads(request["messages_json"])
        assert messages[-1]["role"] == "user" and messages[-1]["content"].strip()
        params = json.loads(request["question_params"])
        assert params["max_tokens"] == 64 and params["temperature"] == 0.0
        assert json.loads(params["structured_outputs"]["json"])["type"] == "object"


def test_cpu_sampler_attributes_a_busy_process():
    sys.path.insert(0, str(REPO))
    from bench.process_cpu import CpuTime, grouped

    cpu = CpuTime(interval=0.2)
    cpu.start()
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    time.sleep(0.5)
    t0 = time.time()
    time.sleep(1.5)
    t1 = time.time()
    cpu.stop()
    busy.wait()
    wall, used = cpu.cores(t0, t1)
    assert used[busy.pid][1] > 0.5  # one spinning core, less what the machine's other work takes
    groups = grouped(used, lambda pid, title: "busy" if pid == busy.pid else "other")
    assert groups["busy"] == pytest.approx(used[busy.pid][1])


def test_curation_scale_judges_growth_apart_from_the_dedup_state(capsys):
    sys.path.insert(0, str(REPO))
    from bench.curation_scale import report

    def run(pairs, seconds, write, dedup):
        peak = {"Write": {"heap": write, "store": 0}, "SeenKeysActor": {"heap": dedup, "store": 0}}
        return {"pairs": pairs, "stages": {"preprocess": {"seconds": seconds, "peak": peak}}}

    report([run(1_000_000, 60.0, 200e6, 80e6), run(4_000_000, 200.0, 240e6, 140e6)], nodes=8)
    growth = [line for line in capsys.readouterr().out.splitlines() if "largest heap growth" in line]
    # the dedup state grew x1.75 but is reported apart; the growth judged is the Write's
    assert growth and "largest heap growth x1.20 (Write)" in growth[0]
    assert "SeenKeysActor heap +20.0 MB per million pairs" in growth[0]


def test_process_memory_counts_the_stores_fallback_files_apart_from_the_heap():
    sys.path.insert(0, str(REPO))
    from bench.process_memory import format_peak, pages_of

    def mapping(header, rss_kb, private_kb):
        return [header + "\n", f"Rss:            {rss_kb} kB\n", "Private_Clean:  0 kB\n",
                f"Private_Dirty:  {private_kb} kB\n"]

    smaps = (mapping("55d0-55e0 rw-p 00000000 00:00 0                          [heap]", 300, 300)
             + mapping("7f00-7f10 rw-s 00000000 00:1a 12 /dev/shm/plasmaAbC123 (deleted)", 2000, 2000)
             + mapping("7f20-7f30 rw-s 00000000 08:01 34 /tmp/ray/session_1/plasmaXyZ789 (deleted)", 500, 500)
             + mapping("7f40-7f50 r--p 00000000 08:01 56 /usr/lib/libplasma_helper.so", 40, 10)
             + mapping("7f60-7f70 rw-p 00000000 00:00 0 ", 100, 100))
    # the fallback file's pages are private to this process, yet they are the store's, not its heap
    assert pages_of(smaps) == {"heap": (300 + 10 + 100) * 1024, "store": 2000 * 1024, "fallback": 500 * 1024}
    line = format_peak("MapWorker(X)", {"heap": 420e6, "store": 2e9, "fallback": 5e8})
    assert "heap      420 MB" in line and "fallback 500 MB (store full)" in line
    assert "fallback" not in format_peak("MapWorker(X)", {"heap": 420e6, "store": 2e9})
