"""Train the same backbone on the same pairs with synpref (Ray Train + DeepSpeed) and with TRL's
RewardTrainer, in one run; print tokens/s of each, their ratio, and both final validation accuracies.

Both see the same pairs, batch size, learning rate, schedule, epochs, precision (fp32: TRL's own
default is bf16 autocast, which this bench turns off, as CPUs without bf16 units run it far slower)
and the same two cores (synpref: one Ray Train worker of 2 threads by default; TRL: one process of 2
threads). Tokens/s counts real (non-pad) tokens of chosen + rejected in steady state: the first
--steps-between-evals steps are left out for both (Ray Data start and DeepSpeed warm-up for synpref,
the first steps for TRL), synpref's from its own per-interval figures, TRL's from its own token count
read at each step's end. Accuracy is recomputed for both exported models the same way
(synpref.rm.format + transformers).

synpref computes a pair's shared tokens (chat template + conversation) once for chosen and rejected
(train.share_prompt); tokens/s still counts both sequences whole, as TRL computes them, and the
table also shows the share of tokens that sharing saved and, with --also-unshared, a synpref run
without it (the gain from length grouping and the trainer alone).

    python bench/train_throughput.py [--model smollm2-135m-instruct] [--pairs 256] [--workers 2 --cpus-per-worker 1 --micro 4]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def accuracy(folder: str, rows: list[dict]) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from synpref.rm.format import rm_text

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    correct = 0
    with torch.no_grad():
        for r in rows:
            w, l = (model(**tokenizer(rm_text(tokenizer, r["conversation"], t), return_tensors="pt")).logits[0, 0]
                    for t in (r["chosen"], r["rejected"]))
            correct += int(w > l)
    return correct / len(rows)


def run_synpref(args, work: Path, train_file: str, val_file: str, share_prompt: bool = True) -> dict:
    out = work / ("synpref" if share_prompt else "synpref-unshared")
    cmd = [sys.executable, str(REPO / "jobs" / "train_rm.py"), f"model={args.model}", f"data.train={train_file}",
           f"data.validation={val_file}", f"output={out}", f"train.zero_stage={args.zero_stage}",
           f"train.share_prompt={str(share_prompt).lower()}", f"train.lr={args.lr}",
           "train.lr_schedule=constant", f"train.max_length={args.max_length}", f"train.micro_batch_size={args.micro}",
           f"train.global_batch_size={args.batch}", f"train.eval_every={args.steps_between_evals}",
           f"workers={args.workers}", f"cpus_per_worker={args.cpus_per_worker}",
           "wandb.mode=disabled", "overwrite=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-2000:] + proc.stderr[-3000:])
    stats = json.loads((out / "stats.json").read_text())
    windows = [m for m in stats["history"] if m.get("tokens_per_s")]
    # steady state: leave out the first interval (Ray Data start, DeepSpeed warm-up); mean of the rest
    steady = windows[1:]  # main() asks for more steps than one interval, so there are at least two
    tokens_per_s = sum(m["tokens_per_s"] for m in steady) / len(steady)
    return {"tokens_per_s": tokens_per_s, "padding_fraction": steady[-1]["padding_fraction"],
            "shared_fraction": steady[-1].get("shared_fraction", 0.0),
            "model": str(out / "model"), "steps": stats["steps"]}


def run_trl(args, work: Path, train_rows: list[dict]) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from synpref.rm.weights import resolve_model

    torch.set_num_threads(2)
    folder = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    dataset = Dataset.from_list([{"prompt": r["conversation"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                  "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in train_rows])

    class StepClock(TrainerCallback):
        """(time, real tokens so far) at each step's end; the tokens are TRL's own count (attention mask sums)."""
        def __init__(self):
            self.trainer, self.marks = None, []

        def on_step_end(self, *a, **k):
            self.marks.append((time.perf_counter(), self.trainer._total_train_tokens))

    clock = StepClock()
    config = RewardConfig(output_dir=str(work / "trl"), per_device_train_batch_size=args.batch,
                          gradient_accumulation_steps=1, learning_rate=args.lr, lr_scheduler_type="constant",
                          num_train_epochs=1, max_length=args.max_length, use_cpu=True, report_to=[],
                          logging_steps=1000, save_strategy="no", disable_dropout=True, seed=0,
                          bf16=False)  # TRL defaults to bf16 autocast; both sides train in fp32 here
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            callbacks=[clock])
    clock.trainer = trainer
    trainer.train()
    trainer.save_model(str(work / "trl" / "model"))
    tokenizer.save_pretrained(str(work / "trl" / "model"))
    # steady state, as for synpref: leave out the first interval of steps (warm-up)
    (t0, n0), (t1, n1) = clock.marks[args.steps_between_evals - 1], clock.marks[-1]
    return {"tokens_per_s": (n1 - n0) / (t1 - t0), "model": str(work / "trl" / "model"), "steps": len(clock.marks)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--val-pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--micro", type=int, default=8, help="synpref pairs per worker per forward")
    parser.add_argument("--workers", type=int, default=1, help="synpref Ray Train workers")
    parser.add_argument("--cpus-per-worker", type=int, default=2, help="synpref threads per worker")
    parser.add_argument("--zero-stage", type=int, default=1, help="synpref DeepSpeed ZeRO stage (the paper: 1)")
    parser.add_argument("--also-unshared", action="store_true", help="add a synpref run with train.share_prompt=false")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--steps-between-evals", type=int, default=8)
    parser.add_argument("--filler-words", type=int, default=40, help="vary prompt lengths (padding matters)")
    args = parser.parse_args()

    if args.pairs // args.batch <= args.steps_between_evals:
        sys.exit(f"--pairs {args.pairs} gives {args.pairs // args.batch} steps: the first --steps-between-evals "
                 f"{args.steps_between_evals} are warm-up and left out, so give more pairs or fewer steps between evals")
    from synpref.demo.synthetic import colour_pairs, write_colour_pairs

    work = Path(tempfile.mkdtemp(prefix="synpref-train-bench-"))
    train_file = write_colour_pairs(work / "train.parquet", args.pairs, seed=1, filler_words=args.filler_words)
    val_file = write_colour_pairs(work / "val.parquet", args.val_pairs, seed=2, filler_words=args.filler_words)
    train_rows = colour_pairs(args.pairs, seed=1, filler_words=args.filler_words)
    val_rows = colour_pairs(args.val_pairs, seed=2, filler_words=args.filler_words)
    print(f"machine: {os.cpu_count()} cores; model {args.model}; {args.pairs} pairs, batch {args.batch}, "
          f"lr {args.lr} constant, max_length {args.max_length}, 1 epoch, fp32; synpref {args.workers} worker(s) x "
          f"{args.cpus_per_worker} thread(s), micro-batch {args.micro}; TRL 1 process x 2 threads")
    runs = {"synpref": run_synpref(args, work, train_file, val_file)}
    if args.also_unshared:
        runs["synpref-unshared"] = run_synpref(args, work, train_file, val_file, share_prompt=False)
    runs["trl"] = run_trl(args, work, train_rows)
    for r in runs.values():
        r["val_accuracy"] = accuracy(r["model"], val_rows)
    print(f"{'':>16} {'tokens/s':>10} {'val_acc':>8} {'steps':>6} {'padding':>8} {'shared':>7}")
    for name, r in runs.items():
        extra = f"{r['padding_fraction']:>8.3f} {r['shared_fraction']:>7.3f}" if "padding_fraction" in r else ""
        print(f"{name:>16} {r['tokens_per_s']:>10.0f} {r['val_accuracy']:>8.3f} {r['steps']:>6} {extra}")
    for name in [n for n in runs if n != "trl"]:
        print(f"ratio {name}/trl tokens/s: {runs[name]['tokens_per_s'] / runs['trl']['tokens_per_s']:.2f}x")
    print(f"work dir {work}")


if __name__ == "__main__":
    main()
