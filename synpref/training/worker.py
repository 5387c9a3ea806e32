"""The Ray Train worker function of Bradley-Terry reward-model training (jobs/train_rm.py).

Each worker: loads the backbone as a sequence classifier (num_labels=1), hands it to
`deepspeed.initialize` (ZeRO stage, offload, precision from config), streams its Ray Data shard
through length-grouped micro-batches (chosen and rejected in one forward), and at every evaluation
point measures accuracy on the validation set, saves a checkpoint (DeepSpeed states on every rank, a
Hugging Face export, the trainer state) and reports it to Ray Train. A restarted worker group
resumes from `ray.train.get_checkpoint()`.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from synpref.rm.shared_prompt import shared_rewards, unsupported
from synpref.training.loss import bradley_terry_loss
from synpref.training.ds_config import build_optimizer, build_scheduler, deepspeed_config, gradient_accumulation
from synpref.training.batches import (OverflowCounts, PairBatch, TokenizedPair, collate, collate_shared, length_grouped,
                                  tokenize_pairs)

PAIR_COLUMNS = ["conversation", "chosen", "rejected", "margin"]
STATE_FILE = "trainer_state.json"


def load_backbone(model_path: str, precision: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def rewards(engine, batch: PairBatch, device) -> tuple[torch.Tensor, torch.Tensor]:
    if batch.position_ids is None:  # chosen rows, then rejected rows: the model reads each at its last token
        out = engine(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device))
        scores = out.logits.squeeze(-1).float()
        return scores[: batch.size], scores[batch.size:]
    return shared_rewards(engine, engine.module, batch, device)  # one row per pair: synpref.rm.shared_prompt


def check_share_prompt(model) -> None:
    reason = unsupported(model)
    if reason:
        raise ValueError(f"train.share_prompt=true: {reason}; set train.share_prompt=false")


def batches_of(pairs: list[TokenizedPair], size: int, train: dict, rng: random.Random, pad_id: int) -> list[PairBatch]:
    shared = train.get("share_prompt", False)
    return [(collate_shared if shared else collate)(group, pad_id)
            for group in length_grouped(pairs, size, rng, packed=shared)]


def micro_batches(shard, tokenizer, train: dict, rng: random.Random, overflow: OverflowCounts):
    """Stream the shard as length-grouped, collated micro-batches."""
    window = train["micro_batch_size"] * train["group_window"]
    for table in shard.iter_batches(batch_size=window, batch_format="pyarrow"):
        pairs, counts = tokenize_pairs(table.select(PAIR_COLUMNS).to_pylist(), tokenizer, train["max_length"],
                                       train["overflow"])
        overflow.add(counts)
        yield from batches_of(pairs, train["micro_batch_size"], train, rng, tokenizer.pad_token_id)


def all_reduce(values: list[float], op=dist.ReduceOp.SUM) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=op)
    return tensor.tolist()


@torch.no_grad()
def evaluate(engine, val_batches: list[PairBatch], dummy: PairBatch, device) -> dict:
    """Accuracy, loss and reward statistics over every rank's validation shard.

    Ranks run the same number of forwards (ZeRO-3 gathers parameters collectively), padding a
    shorter shard with a dummy batch whose results are ignored."""
    engine.eval()
    (n_max,) = all_reduce([len(val_batches)], dist.ReduceOp.MAX)
    sums = [0.0] * 6  # pairs, correct, loss*pairs, sum r, sum r^2, sum (r_w - r_l)
    for i in range(int(n_max)):
        batch = val_batches[i] if i < len(val_batches) else dummy
        r_w, r_l = rewards(engine, batch, device)
        if i < len(val_batches):
            both = torch.cat([r_w, r_l])
            sums = [a + b for a, b in zip(sums, [
                batch.size, float((r_w > r_l).sum()), float(bradley_terry_loss(r_w, r_l)) * batch.size,
                float(both.sum()), float((both ** 2).sum()), float((r_w - r_l).sum())])]
    pairs, correct, loss, r_sum, r_sq, diff = all_reduce(sums)
    engine.train()
    if not pairs:
        return {"val_accuracy": 0.0, "val_pairs": 0}
    mean = r_sum / (2 * pairs)
    return {"val_accuracy": correct / pairs, "val_loss": loss / pairs, "val_pairs": int(pairs),
            "reward_mean": mean, "reward_std": max(0.0, r_sq / (2 * pairs) - mean ** 2) ** 0.5,
            "reward_margin": diff / pairs}


def export_hf(engine, tokenizer, folder: str, zero_stage: int, rank: int) -> None:
    """A Hugging Face folder of the current weights (gathered from all ranks under ZeRO-3)."""
    import deepspeed

    module = engine.module
    if zero_stage == 3:
        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
            state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()} if rank == 0 else None
    else:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()} if rank == 0 else None
    if rank == 0:
        module.save_pretrained(folder, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(folder)


def freeze_lower_layers(model, trainable_layers: int) -> int:
    """Train only the top `trainable_layers` decoder blocks, the final norm and the score head; return
    the trainable parameter count. The frozen blocks need no backward pass, which is most of the cost
    of a step on small hardware (the demo's CPU); 0 trains the head alone (a linear probe)."""
    layers = getattr(model.base_model, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no base_model.layers: train.trainable_layers needs a decoder stack")
    for param in model.parameters():
        param.requires_grad = False
    top = list(layers)[len(layers) - trainable_layers:] if trainable_layers else []
    for module in [*top, getattr(model.base_model, "norm", None), model.score]:
        for param in module.parameters() if module is not None else ():
            param.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_func(config: dict) -> None:
    import deepspeed
    import ray.train

    train = config["train"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = torch.device(f"cuda:{ctx.get_local_rank()}" if config["device"] == "cuda" else "cpu")
    if config["device"] == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(train["seed"])
    rng = random.Random(train["seed"] * 1000 + rank)

    from synpref.rm.weights import resolve_model

    model, tokenizer = load_backbone(resolve_model(config["model"]), train["precision"])
    if train.get("trainable_layers") is not None:
        trainable = freeze_lower_layers(model, train["trainable_layers"])
        if rank == 0:
            print(f"training the top {train['trainable_layers']} blocks, final norm and score head: "
                  f"{trainable / 1e6:.1f}M of {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    if train.get("share_prompt"):
        check_share_prompt(model)
    if train["gradient_checkpointing"]:
        model.gradient_checkpointing_enable()
    total_steps = max(1, config["steps_per_epoch"] * train["epochs"])
    engine, _, _, scheduler = deepspeed.initialize(
        model=model, optimizer=build_optimizer(model, train, config["device"]),
        lr_scheduler=lambda opt: build_scheduler(opt, train, total_steps),
        config=deepspeed_config(train, world, config["device"]))
    accumulation = gradient_accumulation(train, world)

    state = {"step": 0, "epoch": 0, "step_in_epoch": 0, "history": [], "overflow": vars(OverflowCounts())}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            engine.load_checkpoint(os.path.join(folder, "deepspeed"), tag="state",
                                   load_optimizer_states=True, load_lr_scheduler_states=True)
            state = json.loads(Path(folder, STATE_FILE).read_text())
        if rank == 0:
            print(f"resumed from step {state['step']} (epoch {state['epoch']}, step {state['step_in_epoch']} in it)")

    val_rows = config["validation_rows"][rank::world]
    val_pairs, _ = tokenize_pairs(val_rows, tokenizer, train["max_length"], "truncate")
    val_batches = batches_of(val_pairs, train["eval_batch_size"], train, rng, tokenizer.pad_token_id)
    dummy, = batches_of(tokenize_pairs([{"conversation": [{"role": "user", "content": "x"}], "chosen": "a",
                                         "rejected": "b"}], tokenizer, 64, "truncate")[0], 1, train, rng,
                        tokenizer.pad_token_id)
    overflow = OverflowCounts()  # pairs over max_length since the last report
    run = None
    if rank == 0 and config["wandb"]["mode"] != "disabled":
        from synpref.runner.tracking import init_wandb

        run = init_wandb(config["wandb"], job="train_rm", run_dir=config["output"], config=config)

    def checkpoint_and_report(window: dict, started: float) -> None:
        """Validate, checkpoint and report; `window` sums the training since the last report."""
        real, computed, padded, loss_sum, loss_n = all_reduce(
            [window["real"], window["computed"], window["padded"], window["loss_sum"], window["loss_n"]])
        # tokens/s counts chosen + rejected as whole sequences (what a trainer without prompt sharing computes)
        metrics = {"step": state["step"], "epoch": state["epoch"], "train_loss": loss_sum / max(loss_n, 1),
                   "tokens_per_s": real / (time.perf_counter() - started),
                   "padding_fraction": 1 - computed / max(padded, 1), "shared_fraction": 1 - computed / max(real, 1),
                   "lr": scheduler.get_last_lr()[0], **evaluate(engine, val_batches, dummy, device)}
        totals = all_reduce([overflow.pairs, overflow.truncated, overflow.dropped])
        state["overflow"] = {k: state["overflow"][k] + int(v) for k, v in zip(("pairs", "truncated", "dropped"), totals)}
        overflow.pairs = overflow.truncated = overflow.dropped = 0
        metrics.update({f"pairs_{k}": v for k, v in state["overflow"].items()})
        state["history"].append(metrics)
        with tempfile.TemporaryDirectory() as folder:
            engine.save_checkpoint(os.path.join(folder, "deepspeed"), tag="state")
            export_hf(engine, tokenizer, os.path.join(folder, "hf"), train["zero_stage"], rank)
            if rank == 0:
                Path(folder, STATE_FILE).write_text(json.dumps(state, indent=1))
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
                if run:
                    run.log(metrics, step=state["step"])
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder),
                             checkpoint_dir_name=f"step-{state['step']:08d}")

    if not state["history"]:  # a fresh run: record where the model starts
        state["history"].append({"step": 0, "epoch": 0, "train_loss": None, **evaluate(engine, val_batches, dummy, device)})
        if rank == 0:
            print(f"before training: val_accuracy {state['history'][0]['val_accuracy']:.3f}")
    for epoch in range(state["epoch"], train["epochs"]):
        state["epoch"] = epoch
        batches = micro_batches(ray.train.get_dataset_shard("train"), tokenizer, train, rng, overflow)
        for _ in range(state["step_in_epoch"] * accumulation):  # resuming inside this epoch
            next(batches, None)
        window, started = dict.fromkeys(("real", "computed", "padded", "loss_sum", "loss_n"), 0.0), time.perf_counter()
        while True:
            micro = [next(batches, None) for _ in range(accumulation)]
            # every rank must take the same number of steps: stop when any shard runs dry
            (everyone_has_data,) = all_reduce([float(all(m is not None for m in micro))], dist.ReduceOp.MIN)
            if not everyone_has_data:
                break
            for batch in micro:
                r_w, r_l = rewards(engine, batch, device)
                margin = batch.margin.to(device) if train["use_margin"] else None
                loss = bradley_terry_loss(r_w, r_l, margin, train["center_rewards_coefficient"])
                engine.backward(loss)
                engine.step()
                for key, value in (("real", batch.real_tokens), ("computed", batch.computed_tokens),
                                   ("padded", batch.padded_tokens), ("loss_sum", loss.item()), ("loss_n", 1)):
                    window[key] += value
            state["step"] += 1
            state["step_in_epoch"] += 1
            if state["step"] % train["eval_every"] == 0:
                checkpoint_and_report(window, started)
                window, started = dict.fromkeys(window, 0.0), time.perf_counter()
        state["step_in_epoch"] = 0
        state["epoch"] = epoch + 1
        if window["loss_n"] or not state["history"] or state["history"][-1]["step"] != state["step"]:
            checkpoint_and_report(window, started)
    if run:
        run.finish()
