"""PPE (Preference Proxy Evaluations, lmarena; data: the lmarena-ai/PPE-* hub datasets), human
preference and correctness: their loaders and their metrics.

Data:
- human preference (lmarena-ai/PPE-Human-Preference-V1, split "test"): question_id, prompt,
  response_1 (model_a), response_2 (model_b), winner;
- correctness (lmarena-ai/PPE-<set>-Best-of-K, split "train"): question_id, model_name, prompt,
  response_1..response_32, scores (ground-truth correctness per response), sampled_conflict_pairs.

Metrics. The PPE code repository is not in the reference index we could search, so these are the
definitions we chose from the dataset cards and the paper's metric names (arXiv 2410.14872);
each choice is stated where it is made.

Human preference (``response_1`` is model_a's answer, ``response_2`` model_b's, ``winner`` is
"model_a", "model_b" or a tie):
- only decisive votes count (a tie has no preferred response); a vote is correct iff the winner's
  response scores strictly higher than the loser's (a reward tie is wrong, as in every other
  benchmark here); ``score`` = accuracy over decisive votes.

Correctness (PPE-{MMLU-Pro,MATH,GPQA,IFEval,MBPP-Plus}-Best-of-K; 32 sampled responses per
prompt, ``scores`` = ground-truth correctness of each):
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

import re
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from synpref.eval.common import as_float, as_floats, mean, percent
from synpref.eval.items import EvalItem, _messages, _texts, data_files, load_items

PPE_PREFERENCE = "ppe_preference"
PPE_CORRECTNESS = "ppe_correctness"

PPE_PREFERENCE_HUB_ID = "lmarena-ai/PPE-Human-Preference-V1"
PPE_PREFERENCE_HUB_SPLIT = "test"
PPE_CORRECTNESS_HUB_SPLIT = "train"
# The five PPE correctness sets, by the subset names used in results.
PPE_CORRECTNESS_HUB_IDS: dict[str, str] = {
    "mmlu_pro": "lmarena-ai/PPE-MMLU-Pro-Best-of-K",
    "math": "lmarena-ai/PPE-MATH-Best-of-K",
    "gpqa": "lmarena-ai/PPE-GPQA-Best-of-K",
    "ifeval": "lmarena-ai/PPE-IFEval-Best-of-K",
    "mbpp_plus": "lmarena-ai/PPE-MBPP-Plus-Best-of-K",
}

PPE_WINNERS = ("model_a", "model_b")
PPE_WINNER_FLAGS = {"model_a": [True, False], "model_b": [False, True]}
PPE_DEFAULT_K = 32


# ---------------------------------------------------------------------------------------------
# Human preference


def ppe_preference_item(row: Mapping) -> EvalItem:
    return EvalItem(
        benchmark=PPE_PREFERENCE,
        subset=str(row.get("language") or "all"),
        sample_id=str(row["question_id"]),
        conversation=_messages(row["prompt"]),
        responses=_texts([row["response_1"], row["response_2"]]),
        # a tie prefers neither response; the metrics skip it
        is_chosen=PPE_WINNER_FLAGS.get(row["winner"], [False, False]),
        extra={"winner": row["winner"]},
    )


def load_ppe_preference(path: str | Path | None = None, *, hub_id: str | None = None,
                        split: str = PPE_PREFERENCE_HUB_SPLIT) -> list[EvalItem]:
    """PPE human preference from local files, or from the hub (hub_id=PPE_PREFERENCE_HUB_ID)."""
    return load_items(path, hub_id, split, ppe_preference_item, benchmark="PPE human preference",
                      prompt_field="prompt")


def ppe_preference_record(item: EvalItem, scores: list[float]) -> dict:
    """What score_ppe_preference reads for one vote: the winner and the two rewards."""
    return {"winner": item.extra["winner"], "score_1": scores[0], "score_2": scores[1]}


def ppe_preference_metric_group(item: EvalItem) -> str:
    """One group: the metrics are one accuracy over all votes (a sample still spreads over languages)."""
    return "all"


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


# ---------------------------------------------------------------------------------------------
# Correctness

_RESPONSE_COLUMN = re.compile(r"^response_(\d+)$")


def ppe_correctness_item(row: Mapping, *, subset: str) -> EvalItem:
    columns = sorted((int(m.group(1)), key) for key in row if (m := _RESPONSE_COLUMN.match(key)))
    responses = _texts(row[key] for _, key in columns)
    correct = [bool(c) for c in row["scores"]]
    if len(correct) != len(responses):
        raise ValueError(f"PPE {subset} {row['question_id']}: {len(responses)} responses, {len(correct)} labels")
    pairs = row.get("sampled_conflict_pairs")
    sample_id = str(row["question_id"])
    if row.get("model_name"):
        sample_id += f":{row['model_name']}"  # a question is answered by more than one model
    return EvalItem(
        benchmark=PPE_CORRECTNESS,
        subset=subset,
        sample_id=f"{subset}:{sample_id}",
        conversation=_messages(row["prompt"]),
        responses=responses,
        is_chosen=correct,
        extra={"conflict_pairs": [list(p) for p in pairs] if pairs is not None else None},
    )


def ppe_correctness_subset(name: str) -> str:
    """The correctness set a hub id or file name refers to (e.g. "PPE-MMLU-Pro-Best-of-K" -> "mmlu_pro")."""
    normalized = re.sub(r"[^a-z0-9]+", "_", name.lower())
    # mmlu_pro before math, whose name is a substring of other words
    for subset in ("mmlu_pro", "mbpp_plus", "gpqa", "ifeval", "math"):
        if subset in normalized:
            return subset
    raise ValueError(f"cannot tell which PPE correctness set {name!r} is; pass subset=")


def load_ppe_correctness(path: str | Path | None = None, *, hub_id: str | None = None,
                         subset: str | None = None, split: str = PPE_CORRECTNESS_HUB_SPLIT) -> list[EvalItem]:
    """One PPE correctness set from local files, or from the hub (see PPE_CORRECTNESS_HUB_IDS).
    subset defaults to the set named by the hub id or the file name."""
    if subset is None:
        subset = ppe_correctness_subset(hub_id if hub_id is not None else Path(path).name)
    return load_items(path, hub_id, split, partial(ppe_correctness_item, subset=subset),
                      benchmark="PPE correctness", prompt_field="prompt")


def load_ppe_correctness_sets(path: Path) -> list[EvalItem]:
    """Every correctness set in a folder (each ``*best_of_k*`` file is one set), or one set file."""
    files = data_files(path, pattern="*best_of_k*") if path.is_dir() else [path]
    return [item for file in files for item in load_ppe_correctness(file)]


def load_ppe_correctness_from_hub() -> list[EvalItem]:
    """All five correctness sets from the hub."""
    return [item for hub_id in PPE_CORRECTNESS_HUB_IDS.values() for item in load_ppe_correctness(hub_id=hub_id)]


def ppe_correctness_record(item: EvalItem, scores: list[float]) -> dict:
    """What score_ppe_correctness reads for one prompt: its set, rewards, correctness, sampled pairs."""
    return {"benchmark": item.subset, "scores": scores, "correct": item.is_chosen,
            "conflict_pairs": item.extra.get("conflict_pairs")}


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
