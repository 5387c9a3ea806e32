"""RMB (Zhou-Zoey/RMB-Reward-Model-Benchmark): its loader and its metrics.

Data (RMB_dataset/Pairwise_set/**.json, RMB_dataset/BoN_set/**.json): conversation_input
(messages), and either chosen/reject ({llm_name, answer}) with pair_uid, or bon_best/loser_list with
bon_uid; category_path (e.g. "Pairwise_set/Helpfulness/Chat/Discussion").

Metrics:
- pairwise: a pair is correct iff score(chosen) > score(rejected), strictly
  (eval/scripts/my_run_rm.py: ``1 if chosen > rejected else 0``, written out as ``is_correct``);
- best-of-N: a prompt is correct iff its best answer (``bon_best``) strictly outscores every answer
  in its ``loser_list`` (the BoN set is scored as best-vs-loser pairs; one lost or tied pair fails
  the prompt);
- goals: Helpfulness and Harmlessness, read from ``category_path``.

Aggregation: the official repo stops at per-pair results (``is_correct`` per ``pair_uid`` with its
``category_path``) and ships no aggregation script. We take the accuracy over all pairs (or prompts)
of a goal (micro), as the RM-R1 re-implementation of the RMB evaluation does
(eval/RMB-Reward-Model-Benchmark/eval/scripts/process_final_result.py: "Overall_accuracy" and
"BoN Final Accuracy" of each set and goal, then the mean of the four), and report the per-category
accuracies and their unweighted mean (macro) beside it. ``score`` is the mean of the four micro
accuracies (pairwise and BoN x helpfulness and harmlessness).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

from synpref.eval.common import as_float, as_floats, mean, percent
from synpref.eval.items import (
    EvalItem,
    _messages,
    _texts,
    data_files,
    items_from_file,
    only_one,
    split_scores,
)

RMB = "rmb"
RMB_GOALS: tuple[str, ...] = ("helpfulness", "harmlessness")


# ---------------------------------------------------------------------------------------------
# Loading


def rmb_item(row: Mapping) -> EvalItem:
    """A record of either set: pairwise (chosen/reject) or best-of-N (bon_best/loser_list)."""
    conversation = _messages(row["conversation_input"])
    if "bon_best" in row:
        answers = [row["bon_best"]] + list(row["loser_list"])
        sample_id = f"bon:{row['bon_uid']}"  # pair_uid and bon_uid number spaces overlap
        kind = "bon"
    else:
        answers = [row["chosen"], row["reject"]]
        sample_id = f"pairwise:{row['pair_uid']}"
        kind = "pairwise"
    return EvalItem(
        benchmark=RMB,
        subset=row["category_path"],
        sample_id=sample_id,
        conversation=conversation,
        responses=_texts(a["answer"] for a in answers),
        is_chosen=[True] + [False] * (len(answers) - 1),
        extra={"set": kind, "models": [a.get("llm_name") for a in answers]},
    )


def load_rmb(path: str | Path) -> list[EvalItem]:
    """RMB from one set file or a directory: the repo (whose eval/result/ holds other models' results,
    skipped with a line each), RMB_dataset/, Pairwise_set/, BoN_set/ or deeper."""
    items = []
    for file in data_files(path, recursive=True):
        items.extend(items_from_file(file, rmb_item, benchmark="RMB", prompt_field="conversation_input"))
    return items


# ---------------------------------------------------------------------------------------------
# Metrics


def rmb_record(item: EvalItem, scores: list[float]) -> dict:
    """What score_rmb reads for one item: a pairwise record or a best-of-N one, by the item's set."""
    chosen, rejected = split_scores(item, scores)
    if item.extra.get("set") == "bon":
        return {"category": item.subset, "score_best": only_one(chosen, item, "best"), "scores_losers": rejected}
    return {"category": item.subset, "score_chosen": only_one(chosen, item, "chosen"),
            "score_rejected": only_one(rejected, item, "rejected")}


def rmb_metric_group(item: EvalItem) -> str:
    """The set and goal the metrics report the item under, e.g. "pairwise helpfulness"."""
    return f"{item.extra['set']} {rmb_goal(item.subset)}"


def rmb_goal(category_path: str) -> str:
    for part in category_path.split("/"):
        if part.lower() in RMB_GOALS:
            return part.lower()
    raise ValueError(f"RMB category {category_path!r} names neither Helpfulness nor Harmlessness")


def _aggregate(verdicts: list[tuple[str, bool]]) -> dict:
    """(category_path, correct) per unit -> micro and macro accuracy per goal, per-category accuracy."""
    by_category: dict[str, list[bool]] = defaultdict(list)
    for category, ok in verdicts:
        by_category[category].append(ok)
    categories = {c: percent(sum(oks), len(oks)) for c, oks in sorted(by_category.items())}
    micro: dict[str, float] = {}
    macro: dict[str, float] = {}
    counts: dict[str, int] = {}
    for goal in RMB_GOALS:
        oks = [ok for category, ok in verdicts if rmb_goal(category) == goal]
        if not oks:
            continue
        micro[goal] = percent(sum(oks), len(oks))
        macro[goal] = mean(acc for c, acc in categories.items() if rmb_goal(c) == goal)
        counts[goal] = len(oks)
    return {"micro": micro, "macro": macro, "counts": counts, "categories": categories}


def score_rmb(pairwise: Iterable[Mapping] = (), bon: Iterable[Mapping] = ()) -> dict:
    """Score RMB from reward scores.

    pairwise: mappings with ``category`` (the record's category_path), ``score_chosen``,
    ``score_rejected``.
    bon: mappings with ``category``, ``score_best`` and ``scores_losers`` (one per loser).

    Returns ``pairwise`` and ``bon`` (each with ``micro`` / ``macro`` accuracy per goal, ``counts``
    and per-``categories`` accuracy) and ``score``: the mean of the (up to four) micro accuracies.
    """
    pair_verdicts = [
        (r["category"], as_float(r["score_chosen"]) > as_float(r["score_rejected"])) for r in pairwise
    ]
    bon_verdicts = []
    for record in bon:
        best = as_float(record["score_best"])
        losers = as_floats(record["scores_losers"])
        if not losers:
            raise ValueError("an RMB best-of-N prompt needs at least one loser")
        bon_verdicts.append((record["category"], all(best > loser for loser in losers)))
    if not pair_verdicts and not bon_verdicts:
        raise ValueError("no RMB records to score")

    result: dict = {}
    headline: list[float] = []
    for name, verdicts in (("pairwise", pair_verdicts), ("bon", bon_verdicts)):
        if verdicts:
            result[name] = _aggregate(verdicts)
            headline.extend(result[name]["micro"].values())
    result["score"] = mean(headline)
    return result


def rmb_metrics(records: Iterable[Mapping]) -> dict:
    """score_rmb on records of both sets mixed (as rmb_record makes them), told apart by their keys."""
    records = list(records)
    return score_rmb(pairwise=[r for r in records if "score_chosen" in r],
                     bon=[r for r in records if "score_best" in r])
