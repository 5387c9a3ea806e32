"""Stream 1M and 5M synthetic pairs through jobs/preprocess.py; print pairs/s and peak memory.

Memory is sampled every 0.5 s from /proc per process kind (the driver, the read tasks, the
pre-processing actors, the dedup actor, whose keys are the only state meant to grow with the input),
each process's own heap apart from the object-store pages it touched (bench/process_memory.py). The pool has 5% exact duplicates and 0.1% pairs that copy a
benchmark prompt. There is no peer job to race here: the figure printed as a ratio is 5M vs 1M.

    python bench/preprocess_scale.py [--sizes 1000000 5000000] [--workdir /tmp/synpref-bench]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.process_memory import PeakMemory, format_peak  # noqa: E402
from synpref.demo.pool import BENCHMARK_PROMPTS  # noqa: E402

WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "number group problem fact money story month lot right study book word issue side kind head house "
         "service friend father power hour game line end member law car city name team minute idea").split()


def write_pool(folder: Path, n: int, shards: int = 16, seed: int = 0) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_shard = n // shards
    for s in range(shards):
        lines = []
        for i in range(per_shard):
            if i % 20 == 19 and lines:  # 5% exact duplicates of an earlier line in the shard
                lines.append(lines[rng.randrange(len(lines))])
                continue
            prompt = " ".join(rng.choices(WORDS, k=30))
            if i % 1000 == 999:
                prompt = BENCHMARK_PROMPTS[i % len(BENCHMARK_PROMPTS)]
            lines.append(json.dumps({"prompt": f"{s}-{i}: {prompt}", "chosen": " ".join(rng.choices(WORDS, k=40)),
                                     "rejected": " ".join(rng.choices(WORDS, k=40))}))
        (folder / f"shard-{s:03d}.jsonl").write_text("\n".join(lines) + "\n")


def run(n: int, workdir: Path) -> dict:
    pool, out = workdir / f"pool-{n}", workdir / f"out-{n}"
    if not pool.exists():
        t = time.time()
        write_pool(pool, n)
        print(f"wrote {n:,} pairs in {time.time() - t:.0f} s ({sum(f.stat().st_size for f in pool.iterdir()) / 1e9:.2f} GB)")
    bench_file = workdir / "benchmarks" / "mini.json"
    bench_file.parent.mkdir(parents=True, exist_ok=True)
    bench_file.write_text(json.dumps([{"prompt": p} for p in BENCHMARK_PROMPTS]))
    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    proc = subprocess.Popen([sys.executable, str(REPO / "jobs" / "preprocess.py"), f"data.input={pool}",
                             f"data.output={out}", f"decontam.benchmarks=[{bench_file}]", "wandb.mode=disabled"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = PeakMemory(proc.pid)
    sampler.start()
    log = proc.communicate()[0]
    peak = sampler.stop()
    wall = time.time() - started
    if proc.returncode:
        sys.exit(log[-3000:])
    stats = json.loads((out / "stats.json").read_text())
    dedup_bytes = sum(s["bytes"] for s in stats["dedup_state"])
    return {"pairs": n, "wall_s": wall, "job_s": stats["seconds"], "pairs_per_s": n / stats["seconds"],
            "kept": stats["totals"]["kept"], "dedup_keys": sum(s["keys"] for s in stats["dedup_state"]),
            "dedup_state_mb": dedup_bytes / 1e6, "peak": peak}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/synpref-bench"))
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    results = [run(n, args.workdir) for n in args.sizes]
    for r in results:
        print(f"\n{r['pairs']:,} pairs: {r['pairs_per_s']:,.0f} pairs/s, {r['kept']:,} kept, dedup state "
              f"{r['dedup_state_mb']:.1f} MB for {r['dedup_keys']:,} keys")
        for kind, peak in sorted(r["peak"].items()):
            print(format_peak(kind, peak))
    if len(results) > 1:
        a, b = results[0], results[-1]
        growth = sorted(((b["peak"][k]["heap"] / max(a["peak"][k]["heap"], 1), k) for k in b["peak"] if k in a["peak"]),
                        reverse=True)
        print(f"\nratio {b['pairs']:,} vs {a['pairs']:,}: pairs/s x{b['pairs_per_s'] / a['pairs_per_s']:.2f}; heap growth "
              + ", ".join(f"{k[:40]} x{g:.2f}" for g, k in growth[:4])
              + f"; dedup state {a['dedup_state_mb'] / a['dedup_keys'] * 1e6:.1f} MB per million pairs")


if __name__ == "__main__":
    main()
