"""Tokens per pair of each pilot step's input, counted as training counts them (synpref.training.worker's
tokens/s): the chosen and the rejected sequence (conversation + response, synpref.rm.format) each whole,
cut at the step's max_length where it has one (train_rm, score). A training step's rate is in tokens/s,
so its work at the target is pairs x epochs x this; the other steps report it so that a target of
longer pairs can be compared (budget: `tokens_per_pair`).

The tokenizer is a model folder of the pilot itself (a trained RM's model/, else a scoring step's
local model): no download. The pairs are the first `sample` kept pairs of the step's input.
"""

from __future__ import annotations

from pathlib import Path

from synpref.planning.pilot import Step

COLUMNS = ["conversation", "chosen", "rejected"]


def tokenizer_folder(steps: list[Step]) -> str | None:
    """A model folder of the pilot with its tokenizer: a trained RM first, else a scoring step's model."""
    candidates = [s.stats.get("model") for s in steps if s.job == "train_rm"]
    candidates += [m.get("path") for s in steps if s.job == "score" for m in s.config.get("models") or []]
    return next((str(c) for c in candidates if c and (Path(c) / "tokenizer_config.json").exists()), None)


def step_input(step: Step) -> tuple[str | None, int | None]:
    """(the kept pairs the step read, the max_length it cut them at or None)."""
    cfg = step.config
    if step.job == "preprocess":  # what it read is raw: its kept output is what the pool is made of
        return str(Path(step.folder) / "pairs"), None
    data, max_length = {"train_rm": ((cfg.get("data") or {}).get("train"), (cfg.get("train") or {}).get("max_length")),
                        "score": ((cfg.get("data") or {}).get("input"), cfg.get("max_length")),
                        "annotate": ((cfg.get("data") or {}).get("input"), None)}.get(step.job, (None, None))
    if isinstance(data, list):
        data = data[0] if data else None
    return data, max_length


def count_tokens(tokenizer, rows: list[dict], max_length: int | None) -> float:
    """Mean tokens per pair: chosen + rejected sequences, each cut at max_length (None: not cut)."""
    from synpref.rm.format import encode, rm_text

    texts = [rm_text(tokenizer, r["conversation"], r[side]) for side in ("chosen", "rejected") for r in rows]
    ids, _ = encode(tokenizer, texts, max_length or 10**9)
    return sum(len(x) for x in ids) / len(rows)


def measure_tokens_per_pair(steps: list[Step], sample: int = 500) -> dict | None:
    """{"tokenizer", "sample", "per_step": {step: tokens per pair}, "tokens_per_pair": the pilot's figure
    (its first training step's, else its first measured step's)}; None without a tokenizer folder."""
    from synpref.record.pairs_io import kept_path, pairs_dataset

    folder = tokenizer_folder(steps)
    if folder is None:
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    per_step = {}
    for step in steps:
        data, max_length = step_input(step)
        if not step.timed or not data or not Path(data).exists():
            continue
        rows = pairs_dataset(kept_path(data)).head(sample, columns=COLUMNS).to_pylist()
        if rows:
            per_step[step.name] = round(count_tokens(tokenizer, rows, max_length), 1)
    if not per_step:
        return None
    training = [per_step[s.name] for s in steps if s.job == "train_rm" and s.name in per_step]
    return {"tokenizer": folder, "sample": sample, "per_step": per_step,
            "tokens_per_pair": training[0] if training else next(iter(per_step.values()))}
