"""Pairs for the Stage 1 and Stage 2 tests: plain ones, and ones scored by a best and a gold RM."""

from synpref.record.schema import new_pair


def pair(i: int, **extra) -> dict:
    row = new_pair([{"role": "user", "content": f"q{i}"}], f"good {i}", f"bad {i}", source="t", source_record=f"t:{i}")
    row.update(extra)
    return row


def scored(i: int, p_best: float | None, p_gold: float | None) -> dict:
    scores = [{"model": m, "r_chosen": 0.0, "r_rejected": 0.0, "p": p}
              for m, p in (("best", p_best), ("gold", p_gold)) if p is not None]
    return pair(i, rm_scores=scores)
