"""JudgeBench (ScalerLab/JudgeBench) with a reward model as the judge: its loader and its official
metrics.

Data (data/*.jsonl): pair_id, source, question, response_A, response_B, label ("A>B" / "B>A").
Official judge outputs (outputs/*.jsonl) are the same rows plus judge_name and judgments;
``load_judgebench_outputs`` returns them raw for ``replay_judgebench_outputs``.

Metrics, as the official code computes them:
- a reward-model judge scores both responses and decides "A>B" if score_A > score_B, else "B>A"
  (utils/judges.py ``InternLM2Reward`` / ``GRMReward`` / ``SkyworkReward``), so an exact tie is a
  "B>A" decision;
- each pair is judged twice, the second time with the responses swapped, and that second decision
  is flipped back (run_judge.py ``judge_pairs`` with ``reverse_order``; utils/metrics.py
  ``flip_judgment``). Each game adds +1 if its decision equals the label, -1 if it equals the
  flipped label, 0 otherwise (a missing or "A=B" decision); the pair is correct iff the sum > 0
  (utils/metrics.py ``compute_final_metrics``). With one game only (``--single_game``) a pair is
  correct iff the decision equals the label. So with two games an exact reward tie scores 0 (the
  two decisions disagree), with one game it counts as "B>A";
- categories are source prefixes (run_judge.py): mmlu-pro -> knowledge, livebench-reasoning ->
  reasoning, livebench-math -> math, livecodebench -> coding. The official overall is the
  micro-average over all pairs; the Skywork-Reward-V2 paper reports the unweighted mean of the four
  categories, which is the ``score`` here (both are returned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from synpref.eval.common import as_float, mean, percent
from synpref.eval.items import (
    EvalItem,
    _messages,
    _read_file,
    _texts,
    data_files,
    items_from_file,
)

JUDGEBENCH = "judgebench"

# run_judge.py: the prefixes it passes to ``source.startswith``; names as in the JudgeBench paper.
JUDGEBENCH_CATEGORIES: dict[str, str] = {
    "knowledge": "mmlu-pro",
    "reasoning": "livebench-reasoning",
    "math": "livebench-math",
    "coding": "livecodebench",
}

A_BETTER = "A>B"
B_BETTER = "B>A"
JUDGEBENCH_LABELS = (A_BETTER, B_BETTER)


# ---------------------------------------------------------------------------------------------
# Loading


def judgebench_item(row: Mapping) -> EvalItem:
    label = row["label"]
    if label not in JUDGEBENCH_LABELS:
        raise ValueError(f"JudgeBench pair {row['pair_id']}: unexpected label {label!r}")
    return EvalItem(
        benchmark=JUDGEBENCH,
        subset=row["source"],
        sample_id=str(row["pair_id"]),
        conversation=_messages(row["question"]),
        responses=_texts([row["response_A"], row["response_B"]]),
        is_chosen=[label == A_BETTER, label == B_BETTER],
        extra={"label": label, "response_model": row.get("response_model")},
    )


def load_judgebench(path: str | Path) -> list[EvalItem]:
    """JudgeBench pairs from one data JSONL, or every ``*.jsonl`` directly in a directory (e.g.
    data/, which holds the GPT-4o and the Claude-3.5-Sonnet response sets). The repo itself reads
    as its data/ (its outputs/ holds judges' outputs, not pairs)."""
    path = Path(path)
    if path.is_dir() and not any(path.glob("*.jsonl")) and (path / "data").is_dir():
        path = path / "data"
    items = []
    for file in data_files(path, pattern="*.jsonl"):
        items.extend(items_from_file(file, judgebench_item, benchmark="JudgeBench", prompt_field="question"))
    return items


def load_judgebench_outputs(path: str | Path) -> list[dict]:
    """Official JudgeBench judge outputs (outputs/*.jsonl rows), raw, for replay_judgebench_outputs."""
    rows = _read_file(Path(path))
    for row in rows:
        if "judgments" not in row or "label" not in row or "source" not in row:
            raise ValueError(f"{path}: not a JudgeBench output file (a row lacks judgments/label/source)")
    return rows


# ---------------------------------------------------------------------------------------------
# Metrics


def judgebench_record(item: EvalItem, scores: list[float]) -> dict:
    """What score_judgebench reads for one pair: its source, label and the rewards of A and B."""
    return {"source": item.subset, "label": item.extra["label"], "score_A": scores[0], "score_B": scores[1]}


def judgebench_metric_group(item: EvalItem) -> str:
    """The category the metrics report the pair under (knowledge, reasoning, math, coding)."""
    return judgebench_category(item.subset) or item.subset


def flip_decision(decision: str | None) -> str | None:
    """Swap A and B in a decision; anything else ("A=B", None) is returned unchanged."""
    if decision == A_BETTER:
        return B_BETTER
    if decision == B_BETTER:
        return A_BETTER
    return decision


def reward_model_decision(score_first: float, score_second: float) -> str:
    """The official reward-model judge: the first shown response wins only if strictly higher."""
    return A_BETTER if score_first > score_second else B_BETTER


def judgebench_category(source: str) -> str | None:
    for category, prefix in JUDGEBENCH_CATEGORIES.items():
        if source.startswith(prefix):
            return category
    return None


def pair_is_correct(label: str, decisions: Sequence[str | None], reverse_order: bool) -> bool:
    """The official verdict for one pair, given its game decisions in the original A/B frame
    except that the second (swapped) game's decision is still in the swapped frame."""
    if not reverse_order:
        return decisions[0] == label
    first, second = decisions
    counter = 0
    for decision in (first, flip_decision(second)):
        if decision == label:
            counter += 1
        elif decision == flip_decision(label):
            counter -= 1
    return counter > 0


def _metrics(verdicts: list[tuple[str, bool]]) -> dict:
    """verdicts: (source, correct) per pair -> category and overall accuracies."""
    if not verdicts:
        raise ValueError("no JudgeBench pairs to score")
    categories: dict[str, float] = {}
    counts: dict[str, int] = {}
    for category in JUDGEBENCH_CATEGORIES:
        hits = [ok for source, ok in verdicts if judgebench_category(source) == category]
        if hits:
            categories[category] = percent(sum(hits), len(hits))
            counts[category] = len(hits)
    overall_micro = percent(sum(ok for _, ok in verdicts), len(verdicts))
    overall_macro = mean(categories.values()) if categories else overall_micro
    return {
        "categories": categories,
        "counts": counts,
        "n": len(verdicts),
        "overall_micro": overall_micro,
        "overall_macro": overall_macro,
        "score": overall_macro,
    }


def score_judgebench(records: Iterable[Mapping], *, reverse_order: bool = True) -> dict:
    """Score JudgeBench with a reward model as the judge.

    records: one mapping per pair with ``source``, ``label`` ("A>B" or "B>A"), ``score_A`` and
    ``score_B`` (the reward of each response; a reward model scores each response on its own, so
    the swapped game reuses the same two numbers).

    reverse_order: judge each pair twice (the JudgeBench default); False is ``--single_game``.
    Returns ``categories``, ``counts``, ``n``, ``overall_micro`` (official), ``overall_macro``
    (paper) and ``score`` (= overall_macro).
    """
    verdicts = []
    for record in records:
        score_a, score_b = as_float(record["score_A"]), as_float(record["score_B"])
        decisions = [reward_model_decision(score_a, score_b)]
        if reverse_order:
            # The swapped game shows B first: its "A" is our B.
            decisions.append(reward_model_decision(score_b, score_a))
        verdicts.append((record["source"], pair_is_correct(record["label"], decisions, reverse_order)))
    return _metrics(verdicts)


def replay_judgebench_outputs(records: Iterable[Mapping]) -> dict:
    """Recompute JudgeBench metrics from the official output records, as run_judge.py does.

    records: the JSONL rows the official ``run_judge.py`` writes under outputs/ (each with
    ``source``, ``label`` and ``judgments``: one entry per game, a mapping with ``decision`` or
    None when the judge failed). Files written with two games per pair are scored with
    reverse_order, single-game files without, as the CLI flag that produced them implies.
    """
    records = list(records)
    games = {len(record["judgments"]) for record in records}
    if len(games) != 1 or games - {1, 2}:
        raise ValueError(f"expected every record to have 1 or 2 judgments, found counts {sorted(games)}")
    reverse_order = games == {2}
    verdicts = []
    for record in records:
        decisions = [j["decision"] if j is not None else None for j in record["judgments"]]
        verdicts.append((record["source"], pair_is_correct(record["label"], decisions, reverse_order)))
    return _metrics(verdicts)
