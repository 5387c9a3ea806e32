"""Synthetic preference pairs with a rule a tiny model can learn, for tests and benchmarks.

rule="colour": the chosen response names the requested colour, the rejected one another colour, so
accuracy measures whether the reward model reads the prompt and the response together.
rule="answer": the rejected response refuses; learnable from the response alone, in a few steps."""

from __future__ import annotations

import random

import pyarrow.parquet as pq

from synpref.record.schema import new_pair, to_table

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]


def colour_pairs(n: int, seed: int = 0, filler_words: int = 0, rule: str = "colour") -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        want, other = rng.sample(COLOURS, 2)
        filler = " ".join(rng.choice(COLOURS) for _ in range(rng.randint(0, filler_words))) if filler_words else ""
        prompt = f"Name the colour {want}. {filler}".strip()
        rejected = f"The colour is {other}." if rule == "colour" else "I will not answer that."
        rows.append(new_pair([{"role": "user", "content": prompt}], f"The colour is {want}.", rejected, source="synthetic-colours", source_record=f"synthetic:{i}"))
    return rows


def write_colour_pairs(path, n: int, seed: int = 0, filler_words: int = 0, rule: str = "colour") -> str:
    pq.write_table(to_table(colour_pairs(n, seed, filler_words, rule)), path)
    return str(path)
