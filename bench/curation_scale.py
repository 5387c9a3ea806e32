"""Synthetic pairs through the whole curation path at growing sizes: pairs/s and peak memory per stage.

Stages, each a process of its own as a user runs it, at every size:
  preprocess   jobs/preprocess.py over the pool written as one JSONL file (--files 1) or several
  score        jobs/score.py with two tiny random reward models (the best and the gold RM of Stage 2)
  keep rule    Stage 2's keep rule over the scored pairs and the write (Ray Data, as jobs/stage2.py runs it)
  retrieval    Stage 1's exact search of --gold gold queries over the pool's embeddings (random unit
               vectors of 384 floats stand in for MiniLM's: embedding is a stage of its own)
For each stage it prints pairs/s and, per process kind (driver, each Ray worker title), the peak of
its own heap and, apart, of the object-store pages it touched (bench/process_memory.py). With two or
more sizes it prints the ratios of the largest to the smallest (the issue's bounds: heap x1.25, time
x4.5 for 4x the pairs; the dedup state, which keeps a key per pair, apart in MB per million pairs)
and a line extrapolating each stage to 40M pairs on N nodes from the measured slope (linear in pairs,
and in nodes: an assumption, stated). --preprocess-only adds sizes that run preprocess alone. There
is no peer to race: the ratios are size against size.

    python bench/curation_scale.py [--sizes 1000000 4000000] [--preprocess-only 10000000] [--files 1] [--nodes 8]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.preprocess_scale import write_pool  # noqa: E402
from bench.process_memory import PeakMemory, format_peak, kinds_run_before  # noqa: E402
from synpref.preprocess.dedup import SeenKeysActor  # noqa: E402

DIM = 384
TARGET = 40_000_000
DEDUP_STATE = SeenKeysActor.__name__  # its workers' title, ray::SeenKeysActor


def timed(command: list[str], label: str) -> tuple[float, dict]:
    started = time.time()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = PeakMemory(proc.pid)
    sampler.start()
    log = proc.communicate()[0]
    peak = sampler.stop()
    if proc.returncode:
        sys.exit(f"{label} failed:\n{log[-3000:]}")
    return time.time() - started, peak


def write_pool_files(folder: Path, n: int, files: int) -> None:
    if folder.exists():
        return
    started = time.time()
    write_pool(folder, n, shards=files)
    print(f"wrote {n:,} pairs in {files} JSONL file(s) in {time.time() - started:.0f} s", flush=True)


def write_vectors(folder: Path, n: int, seed: int = 0) -> None:
    """n random unit vectors with pair ids, in Parquet files of 200k rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if folder.exists():
        return
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 200_000):
        rows = min(200_000, n - start)
        v = rng.standard_normal((rows, DIM), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        ids = [f"p{start + i:09d}" for i in range(rows)]
        pq.write_table(pa.table({"pair_id": ids, "key": ids, "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(v.ravel()), DIM).cast(pa.list_(pa.float32()))}), folder / f"part-{start // 200_000:05d}.parquet")


def keep_rule(scored: str, output: str) -> None:
    """Stage 2's keep rule over every scored pair (no judges: the unconfident ones count as judged no)."""
    import ray

    from synpref.curation.stage2 import apply_keep_rule
    from synpref.record.pairs_io import write_dataset

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    decided = ray.data.read_parquet(scored).map_batches(apply_keep_rule, batch_format="pyarrow", fn_kwargs=dict(
        best="best", gold="gold", gold_margin=0.0, best_margin=0.0, flip_dropped=True))
    write_dataset(decided, output)


def retrieve(vectors: str, gold: int) -> None:
    import numpy as np
    import ray

    from synpref.curation.pool_search import nearest_in_pool

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    queries = np.random.default_rng(1).standard_normal((gold, DIM), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found, _, candidates = nearest_in_pool(ray.data.read_parquet(vectors), queries, 8)
    print(f"retrieved {sum(len(f) for f in found)} neighbours of {gold} queries among {candidates:,} pairs")


def run_size(n: int, args, models: dict, wanted: list[str]) -> dict:
    work = args.workdir
    pool, pre = work / f"pool-{n}-{args.files}", work / f"pre-{n}"
    write_pool_files(pool, n, args.files)
    shutil.rmtree(pre, ignore_errors=True)
    stages = {}
    stages["preprocess"] = timed([sys.executable, "jobs/preprocess.py", f"data.input={pool}", f"data.output={pre}",
                                  "decontam.enabled=false", "wandb.mode=disabled"], "preprocess")
    scored, kept = work / f"scored-{n}", work / f"kept-{n}"
    if "score" in wanted:
        for folder in (scored, kept):
            shutil.rmtree(folder, ignore_errors=True)
        stages["score"] = timed([sys.executable, "jobs/score.py", f"data.input={pre / 'pairs'}",
                                 f"data.output={scored}", "max_length=128", "wandb.mode=disabled",
                                 f"models=[{{name: best, path: {models['best']}}}, {{name: gold, path: {models['gold']}}}]"],
                                "score")
    if "keep rule" in wanted:
        stages["keep rule"] = timed([sys.executable, __file__, "--keep-rule", str(scored / "pairs"), str(kept)],
                                    "keep rule")
    if "retrieval" in wanted:
        vectors = work / f"vectors-{n}"
        write_vectors(vectors, n)
        stages["retrieval"] = timed([sys.executable, __file__, "--retrieve", str(vectors), "--gold", str(args.gold)],
                                    "retrieval")
    return {"pairs": n, "stages": {name: {"seconds": s, "peak": p} for name, (s, p) in stages.items()}}


def report(results: list[dict], nodes: int) -> None:
    for r in results:
        for stage, m in r["stages"].items():
            print(f"\n{r['pairs']:>11,} pairs  {stage:<10} {m['seconds']:>8.1f} s  {r['pairs'] / m['seconds']:>9,.0f} pairs/s")
            for kind, peak in sorted(m["peak"].items()):
                print(format_peak(kind, peak))
    by_stage: dict[str, list[dict]] = {}
    for r in results:
        for stage, m in r["stages"].items():
            by_stage.setdefault(stage, []).append({"pairs": r["pairs"], **m})
    print()
    for stage, runs in by_stage.items():
        if len(runs) < 2:
            continue
        a, b = runs[0], runs[-1]
        # the dedup state must grow (a key per distinct pair): its slope, apart from the growth judged
        worst = max(((b["peak"][k]["heap"] / max(a["peak"][k]["heap"], 1), k) for k in b["peak"]
                     if k in a["peak"] and k != DEDUP_STATE), default=(0.0, "-"))
        dedup = ""
        if DEDUP_STATE in a["peak"] and DEDUP_STATE in b["peak"]:
            grown = b["peak"][DEDUP_STATE]["heap"] - a["peak"][DEDUP_STATE]["heap"]
            per_million = grown / 1e6 / ((b["pairs"] - a["pairs"]) / 1e6)
            dedup = f"; the dedup state: {DEDUP_STATE} heap +{per_million:.1f} MB per million pairs"
        largest = max((p["heap"] for p in b["peak"].values()), default=0)
        before = kinds_run_before(b["peak"].get(worst[1], {}))
        reused = f", in a process that ran {before} before" if before else ""
        slope = (b["seconds"] - a["seconds"]) / (b["pairs"] - a["pairs"])
        at_target = b["seconds"] + slope * (TARGET - b["pairs"])
        print(f"{stage:<10} {b['pairs']:,} vs {a['pairs']:,} pairs: time x{b['seconds'] / a['seconds']:.2f} for "
              f"x{b['pairs'] / a['pairs']:.1f} pairs; largest heap growth x{worst[0]:.2f} ({worst[1][:50]}{reused})"
              f"{dedup}; largest heap {largest / 1e9:.2f} GB")
        print(f"{stage:<10} 40M pairs: {at_target / 3600:.1f} h on this machine, {at_target / 3600 / nodes:.1f} h on "
              f"{nodes} such nodes (from the slope {slope * 1e6:.0f} s per million pairs; nodes assumed linear)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--preprocess-only", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--files", type=int, default=1, help="JSONL files the pool is written as")
    parser.add_argument("--stages", nargs="+", default=["preprocess", "score", "keep rule", "retrieval"],
                        help="the stages to run at --sizes (keep rule needs score)")
    parser.add_argument("--gold", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/synpref-curation-bench"))
    parser.add_argument("--keep-rule", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--retrieve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keep_rule:
        return keep_rule(*args.keep_rule)
    if args.retrieve:
        return retrieve(args.retrieve, args.gold)

    from synpref.demo.tiny_models import build_tiny_model

    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; pool in {args.files} "
          f"JSONL file(s); object store: Ray's default size for this machine", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = {name: build_tiny_model(args.workdir / f"rm-{name}", kind="seq_cls", seed=seed)
              for seed, name in enumerate(("best", "gold"))}
    results = [run_size(n, args, models, args.stages) for n in args.sizes]
    results += [run_size(n, args, models, ["preprocess"]) for n in args.preprocess_only]
    report(sorted(results, key=lambda r: r["pairs"]), args.nodes)
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
