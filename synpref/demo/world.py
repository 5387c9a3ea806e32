"""A demo world where the truth is known: a noisy preference pool, held-out truth, the ceiling's labels.

`make demo` runs the curation loop on this world so that its report can measure label precision
before and after curation, and compare reward models trained on the raw, the curated and the
truly labelled pool. Every prompt is a checkable task from one of eight families, mixed evenly:
four hard ones (synpref.demo.hard_families: arithmetic, conversion, sorting, a made-up atlas), which a
135M model cannot learn from a few hundred pairs, and four learnable ones
(synpref.demo.learnable_families: recall, capitals, format, refusal), which it can. A `noise` share of
the pool has chosen and rejected swapped. Prompts stay under 13 words where they can, and the
held-out prompts are never pool prompts, so decontamination keeps the pool whole.

    folder/raw/pool.jsonl                   {"prompt", "chosen", "rejected"}: the pool as users give data
    folder/truth.jsonl                      {"prompt", "correct", "wrong", "family", "flipped", "split"}
                                            per pool and held-out prompt ("split": "pool" | "heldout";
                                            held-out lines add "correct_styles" / "wrong_styles")
    folder/heldout/pairs/status=kept/       the held-out pairs, correct response chosen (PAIR_SCHEMA)
    folder/ceiling/pairs/status=kept/       the pool pairs with their true labels (the ablation's ceiling)
    folder/benchmarks/rm-bench/<domain>_filtered.json   the held-out prompts as RM-Bench data files

The truth is the world's alone: no curation stage reads it. The simulated annotator
(synpref.demo.annotator) and the report read it, and the ceiling reward model trains on
ceiling/pairs, the one training set that is the truth by construction.

    python -m synpref.demo.world outputs/demo/world [n_pairs]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from synpref.demo import hard_families, learnable_families
from synpref.demo.hard_families import Task, atlas_tasks
from synpref.record import schema
from synpref.record.pairs_io import write_pairs

HARD = ("arithmetic", "conversion", "sorting", "atlas")
LEARNABLE = ("recall", "capitals", "format", "refusal")
FAMILIES = HARD + LEARNABLE
GENERATORS = {**hard_families.GENERATORS, **learnable_families.GENERATORS}
# RM-Bench domain of each family's held-out file (RM-Bench scores chat, math, code and safety only)
RM_BENCH_DOMAINS = {"arithmetic": "math", "conversion": "math", "sorting": "math", "atlas": "chat",
                    "recall": "chat", "capitals": "chat", "format": "chat", "refusal": "safety-refuse"}
RM_BENCH_DIR = Path("benchmarks") / "rm-bench"


def split_evenly(n: int, parts: int) -> list[int]:
    return [n // parts + (i < n % parts) for i in range(parts)]


def unique_tasks(family: str, n: int, seen: set[str], rng: random.Random) -> list[Task]:
    """n tasks of a generated family whose prompts are not in `seen` (which they are added to)."""
    tasks = []
    for _ in range(200 * n + 1000):
        if len(tasks) == n:
            break
        task = GENERATORS[family](rng)
        if task.prompt not in seen:
            seen.add(task.prompt)
            tasks.append(task)
    if len(tasks) < n:
        raise ValueError(f"could not make {n} distinct {family} prompts; ask for fewer pairs")
    return tasks


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def tasks(n_pairs: int, heldout: int, rng: random.Random, families=FAMILIES) -> tuple[list[Task], list[Task]]:
    """The pool's and the held-out tasks, every family evenly, every prompt distinct."""
    pool: list[Task] = []
    held: list[Task] = []
    seen: set[str] = set()
    parts = len(families)
    for family, n_pool, n_held in zip(families, split_evenly(n_pairs, parts), split_evenly(heldout, parts)):
        if family == "atlas":
            pool_part, held_part = atlas_tasks(n_pool, n_held, rng)
            seen.update(t.prompt for t in pool_part + held_part)
        else:
            pool_part, held_part = unique_tasks(family, n_pool, seen, rng), unique_tasks(family, n_held, seen, rng)
        pool += pool_part
        held += held_part
    if len(seen) != n_pairs + heldout:  # the families' phrasings never meet; checked all the same
        raise AssertionError("duplicate prompts across families")
    rng.shuffle(pool)
    return pool, held


def pair_row(prompt: str, chosen: str, rejected: str, source: str, index: int) -> dict:
    return schema.new_pair([{"role": "user", "content": prompt}], chosen, rejected, source=source,
                           source_record=f"{source}:{index}")


def write_demo_world(folder, n_pairs: int = 200, noise: float = 0.25, heldout: int = 64, seed: int = 0,
                     families=None) -> dict:
    """Write the pool, the truth, the held-out pairs and RM-Bench files, and the ceiling's pairs
    under folder; return the counts: pairs, flipped, heldout, and per family {"pool", "flipped", "heldout"}.
    `families`: the families to mix (default all eight, in FAMILIES' order)."""
    families = tuple(families or FAMILIES)
    if n_pairs < 0 or heldout < 0:
        raise ValueError(f"n_pairs={n_pairs}, heldout={heldout}: both must be >= 0")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise={noise}: the share of flipped labels must be in [0, 1]")
    if set(families) - set(FAMILIES) or len(set(families)) != len(families):
        raise ValueError(f"families={list(families)}: choose distinct families from {list(FAMILIES)}")
    folder = Path(folder)
    rng = random.Random(seed)
    pool, held = tasks(n_pairs, heldout, rng, families)
    flipped = set(rng.sample(range(n_pairs), round(noise * n_pairs)))

    counts = {"pairs": n_pairs, "flipped": len(flipped), "heldout": heldout,
              "families": {f: {"pool": 0, "flipped": 0, "heldout": 0} for f in families}}
    raw, truth, ceiling = [], [], []
    for i, task in enumerate(pool):
        style = rng.randrange(2)  # short or sentence form, the same for both responses
        correct, wrong = task.correct[style], task.wrong[style]
        is_flipped = i in flipped
        chosen, rejected = (wrong, correct) if is_flipped else (correct, wrong)
        raw.append({"prompt": task.prompt, "chosen": chosen, "rejected": rejected})
        truth.append({"prompt": task.prompt, "correct": correct, "wrong": wrong, "family": task.family,
                      "flipped": is_flipped, "split": "pool"})
        ceiling.append(pair_row(task.prompt, correct, wrong, "ceiling", i))
        counts["families"][task.family]["pool"] += 1
        counts["families"][task.family]["flipped"] += is_flipped

    by_domain: dict[str, list[dict]] = {}
    heldout_pairs = []
    for i, task in enumerate(held):
        truth.append({"prompt": task.prompt, "correct": task.correct[0], "wrong": task.wrong[0],
                      "family": task.family, "flipped": False, "split": "heldout",
                      "correct_styles": list(task.correct), "wrong_styles": list(task.wrong)})
        by_domain.setdefault(RM_BENCH_DOMAINS[task.family], []).append(
            {"id": i, "subset": "demo", "family": task.family, "prompt": task.prompt,
             "chosen": list(task.correct), "rejected": list(task.wrong)})
        style = i % 2  # the two forms the pool uses, alternately
        heldout_pairs.append(pair_row(task.prompt, task.correct[style], task.wrong[style], "heldout", i))
        counts["families"][task.family]["heldout"] += 1

    write_jsonl(folder / "raw" / "pool.jsonl", raw)
    write_jsonl(folder / "truth.jsonl", truth)
    write_pairs(heldout_pairs, str(folder / "heldout" / "pairs"))
    write_pairs(ceiling, str(folder / "ceiling" / "pairs"))
    bench_dir = folder / RM_BENCH_DIR
    for domain in sorted(set(RM_BENCH_DOMAINS.values())):
        path = bench_dir / f"{domain}_filtered.json"
        if domain in by_domain:
            bench_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(by_domain[domain], indent=1, ensure_ascii=False), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)  # left by an earlier world in the same folder
    return counts


def load_truth(folder) -> dict[str, dict]:
    """The truth lines of a demo world, keyed by prompt text."""
    lines = (Path(folder) / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return {fact["prompt"]: fact for fact in map(json.loads, filter(str.strip, lines))}


def is_correct(row, truth: dict[str, dict]) -> bool | None:
    """Whether a pair row's chosen response is the correct one: True / False, or None when the prompt
    is not in the truth (or neither response is one the truth knows). Takes Ray Data rows too, whose
    conversation may be a numpy array of message dicts."""
    conversation = row.get("conversation")
    conversation = [] if conversation is None else list(conversation)
    fact = truth.get(schema.prompt_text({"conversation": conversation}))
    if fact is None:
        return None
    correct = {fact["correct"], *fact.get("correct_styles", ())}
    wrong = {fact["wrong"], *fact.get("wrong_styles", ())}
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if chosen in correct:
        return True
    if chosen in wrong or rejected in correct:
        return False
    return None


def label_precision(rows, truth: dict[str, dict]) -> dict:
    """pairs, known (prompt in the truth), correct (chosen is right), precision = correct / known."""
    pairs = known = correct = 0
    for row in rows:
        pairs += 1
        verdict = is_correct(row, truth)
        known += verdict is not None
        correct += verdict is True
    return {"pairs": pairs, "known": known, "correct": correct,
            "precision": round(correct / known, 4) if known else None}


def family_of(row, truth: dict[str, dict]) -> str | None:
    conversation = row.get("conversation")
    fact = truth.get(schema.prompt_text({"conversation": [] if conversation is None else list(conversation)}))
    return fact["family"] if fact else None


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/demo/world")
    counts = write_demo_world(out, n_pairs=int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    print(f"wrote a demo world to {out}: {counts['pairs']} pool pairs ({counts['flipped']} flipped) in "
          f"raw/pool.jsonl, {counts['heldout']} held-out prompts in {RM_BENCH_DIR}/, truth in truth.jsonl")
    print(json.dumps(counts["families"]))
