"""Pairs/s of the reward-model scoring stage (synpref.scoring.transformers_backend.ScorePairs on Ray Data, as jobs/score.py
runs it) against a per-pair transformers loop and a plain batched loop, on the same model, pairs and
cores, in one run; with each one's share of this machine's fp32 matmul rate (measured here with
torch.matmul; model FLOPs estimated as 2 x params x real tokens).

Every side formats and truncates with synpref.rm.format and uses `--threads` intra-op threads:
  per-pair loop:  one HF forward per pair (its chosen and rejected padded together), input order
  batched loop:   one HF forward per `--batch` pairs (2 x batch sequences padded to the longest), input order
  ScorePairs:     the stage's callable in this process, `--stage-batch` pairs per call (length-sorted
                  micro-batches through RewardScorer, conf/score.yaml's token budget), no Ray; with
                  chosen and rejected as two rows, and shared (one row per pair, the conversation once)
  scoring stage:  ray.data.from_arrow -> map_batches(ScorePairs, ActorPoolStrategy(1, 1)) -> materialize
                  (conf/score.yaml's settings, so the shared layout),
                  end to end (actor start and model load included) and with a one-pair run's wall time
                  (the same start-up) subtracted
The model is SmolLM2-135M-Instruct as a sequence classifier (num_labels=1, score head seeded), saved
once to a temporary folder so that the actor loads the same weights. Pairs are synthetic chat pairs
(make_pairs: a conversation, then two responses of a few hundred tokens; seeded), and the bench
prints their shared fraction. The rewards of every side are compared with the per-pair loop's.

    python bench/score_throughput.py [--pairs 128] [--batch 16] [--stage-batch 128] [--threads 2]
"""

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = ("the of and to in is that for it as with was on be by this are from or have an they which one you "
         "data model reward answer question because between system function value number result example "
         "python error return list string people time year way day thing world life hand part child").split()


def make_pairs(n: int, seed: int) -> list[dict]:
    """Chat pairs shaped like preference data: a conversation of one to three user turns (earlier
    assistant turns between them), then two responses of a few hundred tokens; lengths log-normal."""
    from synpref.record.schema import new_pair

    rng = random.Random(seed)

    def text(mean_words: float) -> str:
        k = max(1, int(rng.lognormvariate(math.log(mean_words) - 0.125, 0.5)))
        return " ".join(rng.choice(WORDS) for _ in range(min(k, 1200))).capitalize() + "."

    rows = []
    for i in range(n):
        conversation = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            if conversation:
                conversation.append({"role": "assistant", "content": text(120)})
            conversation.append({"role": "user", "content": text(80)})
        rows.append(new_pair(conversation, text(200), text(200), source="bench", source_record=f"bench:{i}"))
    return rows


def build_rm(model: str, folder: str, seed: int) -> int:
    import torch
    from transformers import AutoModelForSequenceClassification

    from synpref.rm.weights import resolve_model
    from synpref.rm.scorer import load_tokenizer

    path = resolve_model(model)
    tokenizer = load_tokenizer(path)
    torch.manual_seed(seed)  # the new score head
    rm = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    rm.config.pad_token_id = tokenizer.pad_token_id
    rm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in rm.parameters())


def matmul_rate(threads: int, size: int = 2048, repeats: int = 10) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        torch.matmul(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    return 2 * size ** 3 * repeats / (time.perf_counter() - started)


def encoded(tokenizer, rows: list[dict], max_length: int):
    from synpref.scoring.pairs import encode_pairs

    chosen, rejected, _ = encode_pairs(tokenizer, rows, max_length)
    return chosen, rejected


def hf_loop(folder: str, rows: list[dict], pairs_per_forward: int, max_length: int, threads: int) -> dict:
    """The plain transformers way: tokenize, pad, forward, read .logits; `pairs_per_forward` pairs at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from synpref.rm.format import pad_batch
    from synpref.rm.scorer import load_tokenizer

    torch.set_num_threads(threads)
    tokenizer = load_tokenizer(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    rewards, padded = [], 0
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(rows), pairs_per_forward):
            chosen, rejected = encoded(tokenizer, rows[start:start + pairs_per_forward], max_length)
            input_ids, mask = pad_batch(chosen + rejected, tokenizer.pad_token_id)
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, 0].tolist()
            k = len(chosen)
            rewards += list(zip(logits[:k], logits[k:]))
            padded += input_ids.numel()
    return {"seconds": time.perf_counter() - started, "rewards": rewards, "padded": padded}


def stage_options() -> dict:
    """ScorePairs' micro-batch settings as conf/score.yaml gives them to the job."""
    from omegaconf import OmegaConf

    t = OmegaConf.load(REPO / "conf" / "score.yaml").transformers
    return dict(max_tokens_per_forward=t.max_tokens_per_forward, max_rows_per_forward=t.max_rows_per_forward,
                share_prompt=t.share_prompt)


def score_pairs_in_process(folder: str, rows: list[dict], batch: int, max_length: int, threads: int,
                           share_prompt: bool) -> dict:
    from synpref.scoring.transformers_backend import ScorePairs
    from synpref.record.schema import to_table
    from synpref.rm.scorer import length_groups
    from synpref.rm.shared_prompt import packed_length

    stage = ScorePairs([{"name": "rm", "path": folder}], max_length=max_length, torch_threads=threads,
                       **{**stage_options(), "share_prompt": share_prompt})
    scorer = stage.scorers[0][1]
    started = time.perf_counter()
    out = []
    for start in range(0, len(rows), batch):
        out += stage(to_table(rows[start:start + batch])).to_pylist()
    seconds = time.perf_counter() - started
    padded = 0
    for start in range(0, len(rows), batch):
        chosen, rejected = encoded(scorer.tokenizer, rows[start:start + batch], max_length)
        lengths = ([packed_length(c, r) for c, r in zip(chosen, rejected)] if share_prompt
                   else [len(x) for x in chosen + rejected])
        padded += sum(len(g) * max(lengths[i] for i in g) for g in length_groups(
            lengths, scorer.max_tokens_per_forward, scorer.max_rows_per_forward))
    return {"seconds": seconds, "rewards": [(r["rm_scores"][0]["r_chosen"], r["rm_scores"][0]["r_rejected"]) for r in out],
            "padded": padded}


def ray_stage(folder: str, rows: list[dict], batch: int, max_length: int, threads: int) -> dict:
    import ray
    from ray.data import ActorPoolStrategy

    from synpref.scoring.transformers_backend import ScorePairs
    from synpref.record.schema import to_table

    def run(part: list[dict]) -> tuple[float, list[dict]]:
        started = time.perf_counter()
        ds = ray.data.from_arrow(to_table(part)).map_batches(
            ScorePairs, batch_format="pyarrow", batch_size=batch, compute=ActorPoolStrategy(min_size=1, max_size=1),
            num_cpus=1, fn_constructor_kwargs=dict(models=[{"name": "rm", "path": folder}], max_length=max_length,
                                                   torch_threads=threads, **stage_options())).materialize()
        return time.perf_counter() - started, ds.take_all()

    ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
    try:
        startup, _ = run(rows[:1])
        seconds, out = run(rows)
    finally:
        ray.shutdown()
    by_id = {r["source_record"]: r for r in out}
    rewards = [(by_id[r["source_record"]]["rm_scores"][0]["r_chosen"], by_id[r["source_record"]]["rm_scores"][0]["r_rejected"])
               for r in rows]
    return {"seconds": seconds, "startup_seconds": startup, "rewards": rewards}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16, help="pairs per forward of the plain batched loop")
    parser.add_argument("--stage-batch", type=int, default=None,
                        help="pairs per ScorePairs call (default: conf/score.yaml batch_size)")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.stage_batch is None:
        from omegaconf import OmegaConf

        args.stage_batch = int(OmegaConf.load(REPO / "conf" / "score.yaml").batch_size)

    from synpref.rm.scorer import load_tokenizer
    from synpref.rm.shared_prompt import packed_length

    rate = matmul_rate(args.threads)
    rows = make_pairs(args.pairs, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-rm-") as folder:
        params = build_rm(args.model, folder, args.seed)
        chosen, rejected = encoded(load_tokenizer(folder), rows, args.max_length)
        real = sum(len(x) for x in chosen + rejected)
        computed = sum(packed_length(c, r) for c, r in zip(chosen, rejected))
        print(f"machine: {os.cpu_count()} cores, {args.threads} threads per side; fp32 torch.matmul 2048^3: "
              f"{rate / 1e9:.1f} GFLOP/s")
        print(f"model: {args.model} as a seq-cls RM, {params / 1e6:.1f}M params, float32; {args.pairs} pairs, "
              f"{real} real tokens (chosen + rejected, {real / 2 / args.pairs:.0f} per sequence, longest "
              f"{max(len(x) for x in chosen + rejected)}), max_length {args.max_length}")
        print(f"shared fraction: {1 - computed / real:.1%} of those tokens are the conversation's second copy, "
              f"which the shared layout does not compute ({computed} tokens computed)")
        results = {
            "per-pair loop": hf_loop(folder, rows, 1, args.max_length, args.threads),
            f"batched loop ({args.batch} pairs)": hf_loop(folder, rows, args.batch, args.max_length, args.threads),
            f"ScorePairs in process ({args.stage_batch}), two rows": score_pairs_in_process(
                folder, rows, args.stage_batch, args.max_length, args.threads, share_prompt=False),
            f"ScorePairs in process ({args.stage_batch}), shared": score_pairs_in_process(
                folder, rows, args.stage_batch, args.max_length, args.threads, share_prompt=True),
        }
        stage = ray_stage(folder, rows, args.stage_batch, args.max_length, args.threads)
    rate_after = matmul_rate(args.threads)
    print(f"fp32 torch.matmul again after the runs: {rate_after / 1e9:.1f} GFLOP/s (the share below uses the mean "
          f"of the two, {(rate + rate_after) / 2e9:.1f})")
    rate = (rate + rate_after) / 2
    results["scoring stage (Ray Data, end to end)"] = stage
    results["scoring stage, start-up excluded"] = {**stage, "seconds": stage["seconds"] - stage["startup_seconds"]}

    base = results["per-pair loop"]
    flops = 2 * params * real
    print(f"{'':<40} {'pairs/s':>8} {'tokens/s':>9} {'padded/real':>11} {'of matmul':>9} {'vs per-pair':>11} "
          f"{'max |dr|':>9}")
    for name, r in results.items():
        diff = max(abs(a - b) for x, y in zip(r["rewards"], base["rewards"]) for a, b in zip(x, y))
        padded = f"{r['padded'] / real:.2f}" if "padded" in r and "stage" not in name else "-"
        print(f"{name:<40} {args.pairs / r['seconds']:>8.2f} {real / r['seconds']:>9.0f} {padded:>11} "
              f"{flops / r['seconds'] / rate:>9.1%} {base['seconds'] / r['seconds']:>10.2f}x {diff:>9.1e}")
    print(f"scoring stage start-up (a one-pair run: actor start, model load): {stage['startup_seconds']:.1f} s")


if __name__ == "__main__":
    main()
