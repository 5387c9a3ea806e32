"""The pipeline's closing report: what each stage kept and, when the truth is known (the demo world),
how right its labels are, how good the judges are on D_gold, and the paper's ablation (final RMs
trained the same way on the raw pool, the curated pool, curated + recycled flips and the true
labels) on held-out truth. Writes report.md, report.json and the plots; its first line says whether
curation helped, and by how much.
"""

from __future__ import annotations

from synpref.curation.report_markdown import fmt
from synpref.curation.report_plots import plot
from synpref.curation.stage2 import SILVER, is_recycled
from synpref.record import storage
from synpref.record.pairs_io import read_pairs
from synpref.record.schema import DROPPED, KEPT

POOL, GOLD = "pool (preprocessed)", "D_gold (humans)"
UNCHOSEN = (POOL, GOLD)  # sets curation does not choose from: no recall
RESOLVABLE_GAP = 0.05  # held-out learnable gaps under 5 points lie inside the 95% intervals of 64 pairs


def _optional_pairs(path: str) -> list[dict]:
    return read_pairs(path, status=None) if storage.exists(path) else []


def truth_figures(output: str, world: str, s1: dict, heldout: str | None, models: list[str]) -> dict:
    from synpref.curation import report_figures as rf
    from synpref.demo.world import load_truth

    truth = load_truth(world)
    pool = read_pairs(storage.join(output, "preprocess", "pairs"))
    gold = read_pairs(s1["gold"])
    stage2 = read_pairs(storage.join(output, "stage2", "pairs"), status=None)
    available = rf.available_correct(pool, gold, truth)
    verified_silver = [r for r in stage2 if r["reason"] == SILVER]
    sets = {
        POOL: pool,
        GOLD: gold,
        "D_silver, judge-labelled": verified_silver,
        "Stage 2 kept (curated)": [r for r in stage2 if r["status"] == KEPT and not is_recycled(r)],
        "Stage 2 dropped": [r for r in stage2 if r["status"] == DROPPED],
        "Stage 2 recycled flips": [r for r in stage2 if is_recycled(r)],
    }
    decided = [r for r in stage2 if r["reason"] != SILVER and not is_recycled(r) and r["status"] in (KEPT, DROPPED)]
    judged = judged_on_gold(output, s1)
    judged_gold = _optional_pairs(storage.join(judged, "calibration", "pairs")) if judged else []
    return {
        "stages": {name: rf.label_figures(rows, truth, None if name in UNCHOSEN else available)
                   for name, rows in sets.items()},
        "filter": rf.filter_quality(decided, truth),
        "judges_on_gold": rf.judges_on_gold(judged_gold, truth) if judged_gold else None,
        "heldout": rf.heldout_accuracy(read_pairs(storage.join(heldout, "pairs")), models, truth) if heldout else None,
    }


def verdict(report: dict) -> str:
    """Did curation help (on the learnable families, where the RMs can know): the labels first, then
    what the held-out set can say about the RMs trained on them."""
    truth = report.get("truth")
    if not truth:
        return ("No truth is known for this data, so label precision cannot be measured: the final RMs' accuracy "
                "on D_gold is below.")
    pool = truth["stages"][POOL]["learnable"]
    kept = truth["stages"]["Stage 2 kept (curated)"]["learnable"]
    helped = None not in (kept["precision"], pool["precision"]) and kept["precision"] > pool["precision"]
    labels = (f"Curation {'helped' if helped else 'did not help'} on the learnable families: label precision "
              f"{fmt(pool['precision'])} in the pool, {fmt(kept['precision'])} in the Stage 2 curated pool "
              f"(recall {fmt(kept['recall'])}).")
    gap = report.get("gap_closed")
    if not gap:
        return labels
    rms = (f" Held-out learnable pairs: the curated pool's RM {gap['curated']:.3f}, the raw pool's "
           f"{gap['raw']:.3f}, the ceiling {gap['ceiling']:.3f}")
    if gap["gap"] < RESOLVABLE_GAP:
        return labels + rms + (f"; a raw-to-ceiling gap of {gap['gap']:.3f} is under the {RESOLVABLE_GAP:.2f} the "
                               "held-out set resolves, so it cannot show what the curated labels add at this noise "
                               "(world.noise=0.4 widens it).")
    return labels + rms + f"; the curated pool's RM closes {gap['closed']:.0%} of the gap."


def build_report(*, output: str, world: str | None, s1: dict, s2: dict, final: dict[str, dict],
                 heldout: str | None, results: dict, seconds: float, step_times: list[dict] | None = None) -> dict:
    """`final`: training set -> its train_rm stats; `heldout`: the held-out pairs scored by every final
    RM (demo only); `seconds`: this invocation's wall time; `step_times`: every step of every
    invocation (jobs/pipeline.py's step log), whose sum is the pipeline's time when it ran in pieces."""
    from synpref.curation.report_figures import gap_closed

    report = {
        "stage1": [{k: m.get(k) for k in ("iteration", "silver_pairs", "gold_pairs", "gold_accuracy", "gold_wrong",
                                           "retrieved", "pairs_added", "judge_agreement", "position_bias_rate")}
                   for m in s1["metrics"]],
        "stage2_rules": s2["rules"],
        "final": {name: {"train_pairs": stats["train_pairs"], "gold_accuracy": stats["best"]["val_accuracy"],
                         "model": stats["model"]} for name, stats in final.items()},
        "served": {"heldout_rm_bench_score": ((results.get("benchmarks") or {}).get("rm_bench") or {}).get("score"),
                   "source": (results.get("meta") or {}).get("source")},
        "judge_calibration": _calibration(judged_on_gold(output, s1)),
        "truth": truth_figures(output, world, s1, heldout, list(final)) if world else None,
        "seconds": round(seconds, 1),
        "step_seconds": round(sum(t["seconds"] for t in step_times or []), 1),
        "invocations": len({t["invocation"] for t in step_times or []}) or 1,
    }
    if report["truth"] and report["truth"]["heldout"]:
        report["gap_closed"] = gap_closed(report["truth"]["heldout"])
    report["verdict"] = verdict(report)
    report["plots"] = plot(report, output) if not storage.is_uri(output) else []
    from synpref.curation.report_markdown import markdown

    report["markdown"] = markdown(report)
    storage.write_text(storage.join(output, "report.md"), report["markdown"])
    storage.write_json(storage.join(output, "report.json"), {k: v for k, v in report.items() if k != "markdown"})
    return report


def judged_on_gold(output: str, s1: dict) -> str | None:
    """The judging step that measured the judges on D_gold last: Stage 2's, else Stage 1's last."""
    for folder in (storage.join(output, "stage2", "judged"), s1.get("judged")):
        if folder and (storage.read_json(storage.join(folder, "stats.json")) if storage.exists(
                storage.join(folder, "stats.json")) else {}).get("calibration"):
            return folder
    return None


def _calibration(folder: str | None) -> dict | None:
    """The judges' figures on D_gold from that step's stats (the pipeline's own, truth-free view)."""
    if folder is None:
        return None
    stats = storage.read_json(storage.join(folder, "stats.json"))
    return {"threshold": stats.get("judge_threshold"), **(stats.get("calibration") or {})}
