"""Score a reward model on the seven benchmarks of the Skywork-Reward-V2 paper (DESIGN.md section 5).

Reads:  the benchmarks under benchmarks.root (official file layouts; RewardBench 1/2 and PPE also from
        the HF hub with benchmarks.use_hub=true), and either a reward-model server (server.url, a
        jobs/serve_rm.py server: POST /v1/reward) or a model folder scored in this process (model=...)
Writes: <output>/results.json  every benchmark's metrics, the paper's average, what was missing, and
                               with limit=N the sample scored ("sample": n of m items per benchmark)
        <output>/results.md    the paper's table, official aggregates where they differ, categories
        <output>/scores.jsonl  one reward per response of every item (for replay and comparisons)
        <output>/config.yaml, stats.json, _SUCCESS (synpref.runner.runs)

    python jobs/evaluate.py server.url=http://127.0.0.1:8000 output=outputs/eval/rm
    python jobs/evaluate.py model=outputs/rm/model output=outputs/eval/rm limit=50   (a seeded sample of 50 per benchmark)
    ray job submit --working-dir . -- python jobs/evaluate.py server.url=http://rm:8000 output=s3://b/eval/rm
"""

import asyncio
import json
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.eval.benchmarks import benchmark_paths, item_batches, load_benchmarks  # noqa: E402
from synpref.eval.harness import score_items  # noqa: E402
from synpref.eval.headline import PAPER_BENCHMARKS, paper_average  # noqa: E402
from synpref.eval.report import markdown  # noqa: E402
from synpref.eval.sample import sample_benchmarks  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.runner.errors import BadConfig, JobError  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if (cfg.model is None) == (cfg.server.url is None):
        problems.append("set exactly one of server.url=http://host:port (a jobs/serve_rm.py server) or "
                        "model=<folder, hub id or built-in> (scored in this process)")
    unknown = sorted(set(cfg.benchmarks.only or []) - set(PAPER_BENCHMARKS))
    if unknown:
        problems.append(f"benchmarks.only names {unknown}: choose from {list(PAPER_BENCHMARKS)}")
    relative = [k for k, v in cfg.benchmarks.paths.items() if v is not None and not Path(v).is_absolute()]
    if cfg.benchmarks.root is None and relative and not cfg.benchmarks.use_hub:
        problems.append("benchmarks.root is unset: export SYNPREF_BENCHMARKS=<folder of benchmark files> or pass "
                        "benchmarks.root=..., or give absolute benchmarks.paths.<name>, or benchmarks.use_hub=true")
    if cfg.batch_size < 1 or cfg.server.concurrency < 1 or (cfg.limit is not None and cfg.limit < 1):
        problems.append("batch_size, server.concurrency and limit (when set) must be at least 1")
    return problems


def score_over_http(cfg: DictConfig, requests: list[list[dict]], on_done) -> tuple[list[dict], str, int]:
    """Answers of POST /v1/reward per request, the served model's name, and how many requests were retried."""
    import os

    from synpref.serving.client import RewardClient, ServerError

    token = os.environ.get(cfg.server.token_env or "") or None
    client = RewardClient(cfg.server.url, model=cfg.server.model, token=token, concurrency=cfg.server.concurrency,
                          timeout_s=cfg.server.timeout_s, retries=cfg.server.retries, truncate=cfg.truncate)
    try:
        client.health()
    except Exception as error:  # not up, wrong URL, wrong token: say so before loading anything else
        raise JobError(f"server.url={cfg.server.url} is not answering /health: {error}") from None
    try:
        answers = asyncio.run(client.score_batches(requests, on_done))
    except ServerError as error:
        raise JobError(str(error)) from None
    return answers, answers[0]["model"], client.retried


def score_in_process(cfg: DictConfig, requests: list[list[dict]], on_done) -> tuple[list[dict], str, int]:
    """The same answers as the server's, computed here with the same scorer a replica runs."""
    from synpref.rm.weights import resolve_model
    from synpref.rm.scorer import RewardScorer

    scorer = RewardScorer(resolve_model(cfg.model), device=cfg.device, dtype=cfg.dtype,
                          max_rows_per_forward=cfg.batch_size, torch_threads=cfg.torch_threads,
                          max_tokens_per_forward=max(16384, cfg.max_length))
    answers = []
    for index, request in enumerate(requests):
        texts = scorer.texts([(item["conversation"], item["response"]) for item in request])
        ids, truncated = scorer.encode(texts, cfg.max_length)
        if any(truncated) and not cfg.truncate:
            raise BadConfig([f"max_length={cfg.max_length}: a response is longer (request {index}); raise "
                             "max_length or set truncate=true"], job="evaluate")
        answers.append({"scores": scorer.score_ids(ids), "truncated": truncated})
        on_done(index)
    return answers, str(cfg.model), 0


@hydra.main(config_path="../conf", config_name="evaluate", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    run = JobRun.start(cfg, job="evaluate", output=cfg.output, check=check_config)
    if run.done:
        return storage.read_json(storage.join(run.output, "results.json"))
    output, started = run.output, time.time()

    paths = benchmark_paths(cfg.benchmarks.root, OmegaConf.to_container(cfg.benchmarks.paths))
    by_benchmark, missing = load_benchmarks(paths, use_hub=cfg.benchmarks.use_hub, only=cfg.benchmarks.only)
    available = {name: len(items) for name, items in by_benchmark.items()}
    if cfg.limit:
        by_benchmark = sample_benchmarks(by_benchmark, cfg.limit, seed=cfg.limit_seed)
    for name, why in missing.items():
        print(f"missing {name}: {why}")
    if not by_benchmark:
        raise BadConfig(["none of the benchmarks was found; set benchmarks.root (or SYNPREF_BENCHMARKS) or "
                         "benchmarks.paths"], job="evaluate")
    items = [item for benchmark_items in by_benchmark.values() for item in benchmark_items]

    batches = item_batches(items, cfg.batch_size)
    requests = [[{"conversation": items[i].conversation, "response": response}
                 for i in batch for response in items[i].responses] for batch in batches]
    progress = tqdm(total=len(items), unit="item", desc="scoring", mininterval=1.0)
    scorer = score_over_http if cfg.server.url else score_in_process
    answers, model_name, retried = scorer(cfg, requests, lambda i: progress.update(len(batches[i])))
    progress.close()

    per_item, truncated = [None] * len(items), 0
    for batch, answer in zip(batches, answers):
        start = 0
        for i in batch:
            n = len(items[i].responses)
            per_item[i] = answer["scores"][start:start + n]
            truncated += sum(answer["truncated"][start:start + n])
            start += n
    metrics = score_items(items, per_item, ppe_k=cfg.ppe_k)
    seconds = time.time() - started
    responses = sum(len(item.responses) for item in items)
    # a limited run scores a sample: n of m items per benchmark (None when every item was scored)
    sample = None if not cfg.limit else {
        "limit": cfg.limit, "seed": cfg.limit_seed,
        "items": {name: {"scored": len(v), "of": available[name]} for name, v in by_benchmark.items()}}
    results = {
        "benchmarks": metrics,
        "missing": missing,
        "paper_average": paper_average(metrics, allow_partial=True),
        "paper_average_complete": not missing,
        "items_per_benchmark": {name: len(v) for name, v in by_benchmark.items()},
        "sample": sample,
        "meta": {"model": model_name, "source": f"over HTTP from {cfg.server.url}" if cfg.server.url else "in process",
                 "items": len(items), "responses": responses, "truncated": truncated, "retried_requests": retried,
                 "seconds": round(seconds, 2), "limit": cfg.limit,
                 "max_length": None if cfg.server.url else cfg.max_length},  # a server has its own
    }
    storage.write_text(storage.join(output, "scores.jsonl"), "".join(
        json.dumps({"key": item.key, "benchmark": item.benchmark, "subset": item.subset, "scores": scores}) + "\n"
        for item, scores in zip(items, per_item)))
    storage.write_json(storage.join(output, "results.json"), results)
    report = markdown(results)
    storage.write_text(storage.join(output, "results.md"), report)
    print(report.split("\n## ")[0])
    print(f"{len(items)} items ({responses} responses) in {seconds:.1f} s; {output}/results.md")
    headline = ", ".join(f"{name} {m['score']:.1f}" for name, m in metrics.items()
                         if isinstance(m, dict) and isinstance(m.get("score"), (int, float)))
    run.finish({"seconds": round(seconds, 2), "items": len(items), "responses": responses, "truncated": truncated,
                "retried_requests": retried, "missing": sorted(missing),
                "result": f"{len(items)} items scored: {headline or 'no benchmark score'}"})
    return results


if __name__ == "__main__":
    main()
