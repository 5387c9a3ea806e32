"""PPE scoring (Preference Proxy Evaluations, lmarena; data: the lmarena-ai/PPE-* hub datasets).

The PPE code repository is not in the reference index we could search, so these are the
definitions we chose from the dataset cards and the paper's metric names (arXiv 2410.14872);
each choice is stated where it is made.

Human preference (lmarena-ai/PPE-Human-Preference-V1; ``response_1`` is model_a's answer,
``response_2`` model_b's, ``winner`` is "model_a", "model_b" or a tie):
- only decisive votes count (a tie has no preferred response); a vote is correct iff the winner's
  response scores strictly higher than the loser's (a reward tie is wrong, as in every other
  benchmark here); ``score`` = accuracy over decisive votes.

Correctness (lmarena-ai/PPE-{MMLU-Pro,MATH,GPQA,IFEval,MBPP-Plus}-Best-of-K; 32 sampled responses
per prompt, ``scores`` = ground-truth correctness of each):
- pairwise accuracy: over (correct, incorrect) response pairs, the share where the correct response
  scores strictly higher. The pairs are the row's ``sampled_conflict_pairs`` when given (the pairs
  PPE sampled for this metric; pairs whose two responses are equally correct are ignored), else
  every correct x incorrect pair. Micro-averaged over the pairs of a benchmark;
- best-of-K: per prompt, the correctness of the highest-scoring of the first K responses; when
  several tie at the top, the expected correctness of a uniform pick among them. Mean over prompts;
- ``score`` = the unweighted mean over benchmarks of the pairwise accuracy (the PPE Correctness
  number papers report); the mean best-of-K is returned too.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from synpref.eval.common import as_float, as_floats, mean, percent

PPE_WINNERS = ("model_a", "model_b")
PPE_DEFAULT_K = 32


def score_ppe_preference(records: Iterable[Mapping]) -> dict:
    """Score PPE human preference.

    records: mappings with ``winner`` and ``score_1`` / ``score_2`` (rewards of response_1 and
    response_2). Returns ``score`` (percent correct over decisive votes), ``n`` (decisive votes)
    and ``n_skipped`` (ties).
    """
    correct = total = skipped = 0
    for record in records:
        winner = record["winner"]
        if winner not in PPE_WINNERS:
            skipped += 1
            continue
        score_1, score_2 = as_float(record["score_1"]), as_float(record["score_2"])
        total += 1
        if (score_1 > score_2) if winner == "model_a" else (score_2 > score_1):
            correct += 1
    if not total:
        raise ValueError("no decisive PPE preference votes to score")
    return {"score": percent(correct, total), "n": total, "n_skipped": skipped}


def conflict_pairs(correct: Sequence[bool], pairs: Sequence[Sequence[int]] | None) -> list[tuple[int, int]]:
    """(index of the correct response, index of the incorrect one) for each pair to compare."""
    if pairs is None:
        right = [i for i, ok in enumerate(correct) if ok]
        wrong = [i for i, ok in enumerate(correct) if not ok]
        return [(i, j) for i in right for j in wrong]
    ordered = []
    for i, j in pairs:
        if bool(correct[i]) == bool(correct[j]):
            continue
        ordered.append((i, j) if correct[i] else (j, i))
    return ordered


def best_of_k(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    """Expected correctness of the top-scored response among the first k (ties split evenly)."""
    scores, correct = list(scores)[:k], list(correct)[:k]
    top = max(scores)
    winners = [bool(ok) for s, ok in zip(scores, correct) if s == top]
    return sum(winners) / len(winners)


def score_ppe_correctness(records: Iterable[Mapping], *, k: int = PPE_DEFAULT_K) -> dict:
    """Score the PPE correctness sets.

    records: one mapping per prompt with ``benchmark`` (e.g. "mmlu_pro"), ``scores`` (a reward per
    response), ``correct`` (ground truth per response) and optionally ``conflict_pairs``.
    k: how many leading responses best-of-K picks from.

    Returns ``benchmarks`` (per benchmark: ``pairwise``, ``best_of_k``, ``n_prompts``, ``n_pairs``),
    ``pairwise`` and ``best_of_k`` (unweighted means over benchmarks) and ``score`` (= pairwise).
    """
    pair_hits: dict[str, list[bool]] = defaultdict(list)
    bok: dict[str, list[float]] = defaultdict(list)
    for record in records:
        scores = as_floats(record["scores"])
        correct = [bool(c) for c in record["correct"]]
        if len(scores) != len(correct):
            raise ValueError(f"{len(scores)} scores for {len(correct)} correctness labels")
        name = record["benchmark"]
        for i, j in conflict_pairs(correct, record.get("conflict_pairs")):
            pair_hits[name].append(scores[i] > scores[j])
        bok[name].append(best_of_k(scores, correct, k))
    if not bok:
        raise ValueError("no PPE correctness records to score")

    benchmarks = {}
    for name in sorted(bok):
        hits = pair_hits.get(name, [])
        benchmarks[name] = {
            "pairwise": percent(sum(hits), len(hits)) if hits else None,
            "best_of_k": 100.0 * mean(bok[name]),
            "n_prompts": len(bok[name]),
            "n_pairs": len(hits),
        }
    pairwise_values = [b["pairwise"] for b in benchmarks.values() if b["pairwise"] is not None]
    if not pairwise_values:
        raise ValueError("no (correct, incorrect) response pairs to score")
    pairwise = mean(pairwise_values)
    return {
        "benchmarks": benchmarks,
        "pairwise": pairwise,
        "best_of_k": mean(b["best_of_k"] for b in benchmarks.values()),
        "k": k,
        "score": pairwise,
    }
