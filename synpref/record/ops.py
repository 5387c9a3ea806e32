"""The operations on a pair record, each written once: decide, flip, key, read a model's p.

Every stage that changes a pair's outcome calls `record_decision`; every stage that swaps a pair's
responses (a human who flipped it into D_gold, a judge's label in Stage 1, Stage 2's flip recycling)
calls `flip`. So a pair carries the same data whichever stage turned it round.
"""

from __future__ import annotations

import hashlib
import json
import math

from synpref.record.schema import KEPT, pair_id, unordered_key

# what names a side of the pair, and its name once the pair is turned round
_OTHER_SIDE = {"chosen": "rejected", "rejected": "chosen", "original": "swapped", "swapped": "original"}


def row_key(row: dict) -> str:
    """A stable key per input row, for a stage that sends a pair's parts through an engine and meets
    them again (pair_id alone repeats when dedup was off)."""
    key = json.dumps([row.get("pair_id"), row.get("source"), row.get("source_record"), row.get("record_pair_index")])
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow for large |x|."""
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def record_decision(row: dict, *, stage: str | None, status: str = KEPT, reason: str | None = None) -> dict:
    """Set the row's outcome (status, stage, reason); the decision it carried moves into `history`.

    `stage=None` (with status kept) means "no decision of this stage": the pair simply passes. A
    decision equal to the one the row already carries is not recorded twice, so re-running a stage
    over its own output leaves the history as it was. Returns the row, changed in place."""
    current = (row.get("status") or KEPT, row.get("stage"), row.get("reason"))
    if current[1] is not None and current != (status, stage, reason):
        row["history"] = list(row.get("history") or []) + [
            {"stage": current[1], "status": current[0], "reason": current[2]}]
    elif row.get("history") is None:
        row["history"] = []
    row.update(status=status, stage=stage, reason=reason)
    return row


def flip(row: dict, *, stage: str, reason: str) -> dict:
    """A new row: the pair the other way round, kept, decided by `stage` for `reason`.

    chosen <-> rejected and a new pair_id (it is another ordered pair; `pair_key` is unchanged, so it
    still matches the pair it came from). Everything that names a side turns with it: the judges'
    label and votes (verdict and order), each model's rewards, p -> 1 - p, and the logprob votes'
    slot log-probabilities. `margin` (the data's own score gap) no longer applies."""
    new = dict(row)
    new.update(chosen=row["rejected"], rejected=row["chosen"], margin=None,
               pair_id=pair_id(row["conversation"], row["rejected"], row["chosen"]))
    new["judge_label"] = _OTHER_SIDE.get(row.get("judge_label"), row.get("judge_label"))
    if row.get("judge_score") is not None:
        new["judge_score"] = -row["judge_score"]
    if row.get("judge_votes") is not None:
        new["judge_votes"] = [_flipped_vote(v) for v in row["judge_votes"]]
    if row.get("rm_scores") is not None:
        new["rm_scores"] = [{**s, "r_chosen": s.get("r_rejected"), "r_rejected": s.get("r_chosen"),
                             "p": None if s.get("p") is None else 1.0 - s["p"]} for s in row["rm_scores"]]
    return record_decision(new, stage=stage, status=KEPT, reason=reason)


def _flipped_vote(vote: dict) -> dict:
    out = {**vote, "verdict": _OTHER_SIDE.get(vote.get("verdict"), vote.get("verdict")),
           "order": _OTHER_SIDE.get(vote.get("order"), vote.get("order"))}
    if "logprob_chosen" in vote:
        out.update(logprob_chosen=vote.get("logprob_rejected"), logprob_rejected=vote.get("logprob_chosen"))
    if vote.get("score") is not None:
        out["score"] = -vote["score"]
    if vote.get("p_judge") is not None:
        out["p_judge"] = 1.0 - vote["p_judge"]
    return out


def pair_key(row: dict) -> str:
    """The pair regardless of which response is chosen: a pair and its flip share it, so a verified
    (possibly flipped) pair is matched back to the pool pair it came from."""
    return unordered_key(row["conversation"], row["chosen"], row["rejected"])


def both_pair_ids(row: dict) -> set[str]:
    """The pair_ids the pair has in either order (a flipped gold row was the other order in the pool)."""
    return {pair_id(row["conversation"], row["chosen"], row["rejected"]),
            pair_id(row["conversation"], row["rejected"], row["chosen"])}


def p_of(row: dict, model: str) -> float | None:
    """p = sigmoid(r_chosen - r_rejected) that `model` gave the pair (its rm_scores entry), or None."""
    for score in row.get("rm_scores") or []:
        if score["model"] == model:
            return None if score["p"] is None else float(score["p"])
    return None


def with_score(rm_scores: list | None, model: str, r_chosen: float, r_rejected: float) -> list[dict]:
    """rm_scores with `model`'s entry replaced in place (or appended); other models' entries kept."""
    entry = {"model": model, "r_chosen": r_chosen, "r_rejected": r_rejected, "p": sigmoid(r_chosen - r_rejected)}
    scores = [dict(s) for s in rm_scores or []]
    for i, s in enumerate(scores):
        if s["model"] == model:
            scores[i] = entry
            return scores
    return scores + [entry]
