"""The evaluation results as a Markdown report: the paper's table, the official aggregates where
they differ from the paper's, and one table of categories per benchmark.

Input is what jobs/evaluate.py writes to results.json: {"benchmarks": {name: metrics},
"missing": {name: reason}, "paper_average": ..., "items_per_benchmark": {name: n}, "sample": None or
{"limit", "seed", "items": {name: {"scored", "of"}}}, "meta": {...}}. A sampled run says so at the
top and counts "n of m" items in the table.
"""

from __future__ import annotations

from synpref.eval.headline import PAPER_BENCHMARKS

TITLES = {
    "rewardbench": "RewardBench",
    "rewardbench2": "RewardBench 2",
    "ppe_preference": "PPE Preference",
    "ppe_correctness": "PPE Correctness",
    "rmb": "RMB",
    "rm_bench": "RM-Bench",
    "judgebench": "JudgeBench",
}

# What the headline ("score") of each benchmark's metrics is, as the paper's table uses it.
HEADLINE = {
    "rewardbench": "weighted sections (official overall)",
    "rewardbench2": "mean of subsets (official overall)",
    "ppe_preference": "accuracy",
    "ppe_correctness": "pairwise accuracy, mean of sets",
    "rmb": "mean of pairwise / BoN x helpful / harmless (micro)",
    "rm_bench": "mean of domains (avg of hard, normal, easy)",
    "judgebench": "mean of 4 categories (paper)",
}


def fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def official_aggregates(name: str, result: dict) -> str:
    """The benchmark's own aggregates where they differ from the headline (else "same")."""
    if name == "judgebench":
        return f"micro-average over pairs (official): {fmt(result['overall_micro'])}"
    if name == "rm_bench":
        return f"hard {fmt(result['hard'])} / normal {fmt(result['normal'])} / easy {fmt(result['easy'])}"
    if name == "ppe_correctness":
        return f"best-of-{result['k']}: {fmt(result['best_of_k'])}"
    if name == "rmb":
        parts = [f"{kind} {goal} {fmt(value)}" for kind in ("pairwise", "bon")
                 for goal, value in result.get(kind, {}).get("micro", {}).items()]
        return "; ".join(parts)
    if name == "rewardbench" and result.get("prior_sets") is None:
        return "same (no prior sets present: mean of sections)"
    return "same"


def category_rows(name: str, result: dict) -> list[tuple[str, float | None, int | str]]:
    """(category, score, count) rows for one benchmark's detail table."""
    if name == "rewardbench":
        rows = [(f"section {s}", v, "") for s, v in result["sections"].items()]
        if result.get("prior_sets") is not None:
            rows.append(("prior sets", result["prior_sets"], ""))
        return rows + [(s, v, result["counts"][s]) for s, v in result["subsets"].items()]
    if name == "rewardbench2":
        rows = [(s, v, result["counts"][s]) for s, v in result["subsets"].items()]
        # the Ties formula's components are fractions; shown in percent like everything else
        return rows + [(f"Ties: {c}", 100.0 * v, "") for c, v in (result.get("ties") or {}).items()]
    if name == "ppe_preference":
        return [("all (ties skipped)", result["score"], result["n"])]
    if name == "ppe_correctness":
        rows = []
        for s, b in result["benchmarks"].items():
            rows += [(f"{s} pairwise", b["pairwise"], b["n_pairs"]),
                     (f"{s} best-of-{result['k']}", b["best_of_k"], b["n_prompts"])]
        return rows
    if name == "rmb":
        rows = []
        for kind in ("pairwise", "bon"):
            part = result.get(kind)
            if not part:
                continue
            for goal in part["micro"]:
                rows.append((f"{kind} {goal} (micro)", part["micro"][goal], part["counts"][goal]))
                rows.append((f"{kind} {goal} (macro over categories)", part["macro"][goal], ""))
            rows += [(f"{kind} {c}", v, "") for c, v in part["categories"].items()]
        return rows
    if name == "rm_bench":
        rows = []
        for d, v in result["domains"].items():
            rows += [(f"{d} {level}", v[level], v["n"] if level == "avg" else "")
                     for level in ("avg", "hard", "normal", "easy")]
        return rows
    if name == "judgebench":
        return [(c, v, result["counts"][c]) for c, v in result["categories"].items()] + [
            ("micro-average (official)", result["overall_micro"], result["n"]),
            ("category mean (paper)", result["overall_macro"], result["n"])]
    return []


def item_count(results: dict, name: str) -> str:
    """Items scored for one benchmark: "n", or "n of m" when a sample left some out."""
    scored = results["items_per_benchmark"][name]
    sample = results.get("sample")
    of = sample["items"][name]["of"] if sample else scored
    return f"{scored} of {of}" if of != scored else str(scored)


def markdown(results: dict) -> str:
    meta, benchmarks, missing = results["meta"], results["benchmarks"], results["missing"]
    lines = [f"# Reward-model evaluation: {meta['model']}", "",
             f"Scored {meta['source']}; {meta['items']} items, {meta['responses']} responses "
             f"({meta['truncated']} left-truncated to max_length) in {meta['seconds']:.1f} s.", ""]
    sample = results.get("sample")
    if sample:
        counts = ", ".join(f"{TITLES[name]} {n['scored']} of {n['of']}" for name, n in sample["items"].items())
        lines += [(f"**A sample, not the whole benchmarks: at most {sample['limit']} items of each, spread over its "
                   f"subsets (limit_seed={sample['seed']}); scored {counts} items.**"), ""]
    lines += ["| Benchmark | Score | Paper's metric | Official aggregate | Items |", "|---|---:|---|---|---:|"]
    for name in PAPER_BENCHMARKS:
        if name in benchmarks:
            r = benchmarks[name]
            lines.append(f"| {TITLES[name]} | {fmt(r['score'])} | {HEADLINE[name]} | "
                         f"{official_aggregates(name, r)} | {item_count(results, name)} |")
        else:
            lines.append(f"| {TITLES[name]} | missing | | | 0 |")
    n = len(benchmarks)
    label = "Average of the 7 (paper)" if n == len(PAPER_BENCHMARKS) else f"Average of {n} present (NOT the paper's 7)"
    lines += [f"| **{label}** | **{fmt(results['paper_average'])}** | plain mean of headlines | | |", ""]
    if missing:
        lines += ["Missing benchmarks:", ""] + [f"- {TITLES[m]}: {why}" for m, why in missing.items()] + [""]
    for name in PAPER_BENCHMARKS:
        if name not in benchmarks:
            continue
        lines += [f"## {TITLES[name]}", "", "| Category | Score | n |", "|---|---:|---:|"]
        lines += [f"| {c} | {fmt(v)} | {k} |" for c, v, k in category_rows(name, benchmarks[name])]
        lines.append("")
    return "\n".join(lines)
