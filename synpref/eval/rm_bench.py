"""RM-Bench (THU-KEG/RM-Bench): its loader and its official metrics (scripts/utils.py
``compute_accuracy``; the same function is printed in the repo README).

Data (data/*_filtered.json): id, prompt, chosen[3], rejected[3], and the domain in the file name
(total_dataset.json carries a ``domain`` field instead). The three responses of each side are in
the styles (concise, detailed plain, detailed markdown).

Metrics:
- acc[i][j] = share of records with score(chosen_i) > score(rejected_j); strict, so a tie is wrong;
- hard = mean of the upper triangle (i < j: the chosen answer is plainer than the rejected one),
  normal = mean of the diagonal, easy = mean of the lower triangle;
- per domain: chat, math, code, safety; a record belongs to the first of these its domain starts
  with, so safety-refuse and safety-response pool into one safety domain (``split_dataset_by_domain``);
- a domain's average is the mean of its hard, normal and easy accuracies; the overall hard / normal
  / easy are means over domains, and the overall score ("total_avg_acc") is the mean of the domain
  averages. Domains with no records are left out (the official code assumes all four exist).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from synpref.eval.common import as_floats, mean
from synpref.eval.items import (
    EvalItem,
    _messages,
    _texts,
    items_from_file,
    split_scores,
)

RM_BENCH = "rm_bench"

RM_BENCH_DOMAINS: tuple[str, ...] = ("chat", "math", "code", "safety")
RM_BENCH_STYLES: tuple[str, ...] = ("concise", "detailed_plain", "detailed_markdown")
MATRIX_SIZE = len(RM_BENCH_STYLES)


# ---------------------------------------------------------------------------------------------
# Loading


def rm_bench_item(row: Mapping, *, domain: str | None = None) -> EvalItem:
    """One record of an RM-Bench file; domain = the file's domain when the record carries none."""
    row_domain = row.get("domain", domain)
    if row_domain is None:
        raise ValueError(f"RM-Bench id {row['id']}: no domain in the record or the file name")
    chosen, rejected = list(row["chosen"]), list(row["rejected"])
    if len(chosen) != 3 or len(rejected) != 3:
        raise ValueError(f"RM-Bench id {row['id']}: expected 3 chosen and 3 rejected responses")
    return EvalItem(
        benchmark=RM_BENCH,
        subset=row_domain,
        # ids restart in every domain file, so qualify them with the domain
        sample_id=f"{row_domain}:{row['id']}",
        conversation=_messages(row["prompt"]),
        responses=_texts(chosen + rejected),
        is_chosen=[True] * 3 + [False] * 3,
    )


def _domain_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*_filtered.json")) or [folder / "total_dataset.json"]


def load_rm_bench(path: str | Path) -> list[EvalItem]:
    """RM-Bench from a data file, or a directory of ``<domain>_filtered.json`` files (or, failing
    those, ``total_dataset.json``, which holds every domain): the repo's data/ folder, or the repo
    itself (its data/ is then read)."""
    path = Path(path)
    if path.is_dir():
        files = _domain_files(path)
        if not files[0].is_file() and (path / "data").is_dir():
            files = _domain_files(path / "data")
    else:
        files = [path]
    items = []
    for file in files:
        domain = file.stem.removesuffix("_filtered") if file.stem.endswith("_filtered") else None
        items.extend(items_from_file(file, partial(rm_bench_item, domain=domain), benchmark="RM-Bench",
                                     prompt_field="prompt"))
    return items


# ---------------------------------------------------------------------------------------------
# Metrics


def rm_bench_record(item: EvalItem, scores: list[float]) -> dict:
    """What score_rm_bench reads for one item: its 3 chosen and 3 rejected rewards."""
    chosen, rejected = split_scores(item, scores)
    return {"domain": item.subset, "score_chosen": chosen, "score_rejected": rejected}


def rm_bench_metric_group(item: EvalItem) -> str:
    """The domain the metrics report the item under (safety-refuse and safety-response pool)."""
    return rm_bench_domain(item.subset)


def rm_bench_domain(name: str) -> str:
    """The pooled domain of a record's domain or file name (e.g. "safety-refuse" -> "safety")."""
    for domain in RM_BENCH_DOMAINS:
        if name.startswith(domain):
            return domain
    raise ValueError(f"unknown RM-Bench domain {name!r}; expected one starting with {RM_BENCH_DOMAINS}")


def accuracy_matrix(records: list[Mapping]) -> np.ndarray:
    """acc[i][j] = share of records whose chosen response i outscores rejected response j."""
    matrix = np.zeros((MATRIX_SIZE, MATRIX_SIZE))
    for record in records:
        chosen = as_floats(record["score_chosen"])
        rejected = as_floats(record["score_rejected"])
        if len(chosen) != MATRIX_SIZE or len(rejected) != MATRIX_SIZE:
            raise ValueError(f"RM-Bench needs {MATRIX_SIZE} chosen and {MATRIX_SIZE} rejected scores per record")
        for i in range(MATRIX_SIZE):
            for j in range(MATRIX_SIZE):
                if chosen[i] > rejected[j]:
                    matrix[i][j] += 1
    return matrix / len(records)


def hard_normal_easy(matrix: np.ndarray) -> dict[str, float]:
    off_diagonal = MATRIX_SIZE * (MATRIX_SIZE - 1) / 2
    return {
        "hard": 100.0 * float(np.sum(np.triu(matrix, 1)) / off_diagonal),
        "normal": 100.0 * float(np.mean(np.diag(matrix))),
        "easy": 100.0 * float(np.sum(np.tril(matrix, -1)) / off_diagonal),
    }


def score_rm_bench(records: Iterable[Mapping]) -> dict:
    """Score RM-Bench from per-response reward scores.

    records: one mapping per prompt with ``domain`` (e.g. "chat", "safety-refuse"),
    ``score_chosen`` and ``score_rejected`` (3 scores each, in style order).

    Returns ``domains`` (per pooled domain: hard, normal, easy, avg, n, and the 3x3 ``matrix`` in
    percent), overall ``hard``, ``normal``, ``easy`` and ``score``.
    """
    by_domain: dict[str, list[Mapping]] = defaultdict(list)
    for record in records:
        by_domain[rm_bench_domain(record["domain"])].append(record)
    if not by_domain:
        raise ValueError("no RM-Bench records to score")

    domains: dict[str, dict] = {}
    for domain in RM_BENCH_DOMAINS:
        rows = by_domain.get(domain)
        if not rows:
            continue
        matrix = accuracy_matrix(rows)
        levels = hard_normal_easy(matrix)
        domains[domain] = {
            **levels,
            "avg": mean(levels.values()),
            "n": len(rows),
            "matrix": (100.0 * matrix).tolist(),
        }

    return {
        "domains": domains,
        "hard": mean(d["hard"] for d in domains.values()),
        "normal": mean(d["normal"] for d in domains.values()),
        "easy": mean(d["easy"] for d in domains.values()),
        "score": mean(d["avg"] for d in domains.values()),
    }
