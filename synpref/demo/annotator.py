"""A simulated human verifier for the demo world: it answers from the world's known truth.

It stands in for the people of Stage 1 (chosen / flipped / undecidable, with a human error rate), and
with the report it is the only reader of the truth (synpref.verification.waiting calls it).
"""

from __future__ import annotations

import hashlib
import json

from synpref.demo.world import is_correct


def _uniforms(*key) -> tuple[float, float]:
    """Two uniform numbers in [0, 1) fixed by the key (independent of call order)."""
    digest = hashlib.blake2b(json.dumps(key).encode("utf-8"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") / 2**64, int.from_bytes(digest[8:], "little") / 2**64


def simulate_annotator(rows, truth: dict[str, dict], *, annotator: str = "sim-1", error_rate: float = 0.0,
                       undecidable_rate: float = 0.05, seed: int = 0) -> list[dict]:
    """A simulated human verifier: one {"pair_id", "verdict", "annotator", "notes"} per row.

    verdict is "chosen" when the row's chosen response is correct, "flipped" when it is wrong, and
    "undecidable" for a prompt the truth does not know or with probability undecidable_rate; with
    probability error_rate a decidable verdict is the wrong one of chosen / flipped (a human
    mistake). Each draw depends on (seed, annotator, pair_id) only.
    """
    verdicts = []
    for row in rows:
        pid = row["pair_id"]
        right = is_correct(row, truth)
        u_undecidable, u_error = _uniforms(seed, annotator, pid)
        if right is None:
            verdict, notes = "undecidable", "simulated: prompt or responses not in the truth"
        elif u_undecidable < undecidable_rate:
            verdict, notes = "undecidable", "simulated: could not decide (undecidable_rate)"
        elif u_error < error_rate:
            verdict, notes = ("flipped" if right else "chosen"), "simulated: a human mistake (error_rate)"
        else:
            verdict, notes = ("chosen" if right else "flipped"), "simulated: checked against the truth"
        verdicts.append({"pair_id": pid, "verdict": verdict, "annotator": annotator, "notes": notes})
    return verdicts
