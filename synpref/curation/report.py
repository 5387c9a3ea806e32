"""The pipeline's closing report: per stage how many pairs were kept and, when the truth is known (the
demo world), how many of their labels are right; the consistency filter's precision and recall; the
final RM's accuracy on D_gold and on the held-out evaluation. Writes report.md, report.json and plots.
"""

from __future__ import annotations

import pyarrow.dataset as pads

from synpref.record import storage
from synpref.record.pairs_io import read_kept


def _rows(pairs_path: str, status: str | None = None) -> list[dict]:
    fs, path = storage.filesystem(pairs_path)
    dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
    columns = ["pair_id", "conversation", "chosen", "rejected", "status", "reason"]
    rows = dataset.to_table(columns=columns).to_pylist()
    return [r for r in rows if status is None or r["status"] == status]


def filter_quality(decided: list[dict], truth: dict) -> dict:
    """The keep rule as a classifier of "this label is right": precision, recall over the pool pairs it
    decided (D_silver and flipped rows excluded)."""
    from synpref.demo.world import is_correct

    tp = fp = fn = tn = 0
    for row in decided:
        right = is_correct(row, truth)
        if right is None:
            continue
        kept = row["status"] == "kept"
        tp += kept and right
        fp += kept and not right
        fn += (not kept) and right
        tn += (not kept) and not right
    return {"true_kept": tp, "wrong_kept": fp, "right_dropped": fn, "wrong_dropped": tn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None}


def plot(report: dict, folder: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = [r for r in report["stages"] if r.get("precision") is not None]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(range(len(rows)), [r["precision"] for r in rows], color="#4c72b0")
        ax.set_xticks(range(len(rows)), [r["set"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("label precision vs truth")
        ax.set_title("Label precision by stage")
        fig.tight_layout()
        path = storage.join(folder, "precision_by_stage.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    quality = report.get("filter")
    if quality and quality["precision"] is not None:
        fig, ax = plt.subplots(figsize=(4, 3.2))
        ax.bar(["precision", "recall"], [quality["precision"], quality["recall"] or 0], color=["#55a868", "#c44e52"])
        ax.set_ylim(0, 1)
        ax.set_title("Stage 2 filter vs truth")
        fig.tight_layout()
        path = storage.join(folder, "filter_precision_recall.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def build_report(*, output: str, world: str | None, s1: dict, s2: dict, final_rm: dict, results: dict,
                 seconds: float, step_times: list[dict] | None = None) -> dict:
    """`seconds`: this invocation's wall time; `step_times`: every step of every invocation (jobs/pipeline.py's
    step log), whose sum is the pipeline's time when it ran in pieces."""
    truth = None
    if world:
        from synpref.demo.world import label_precision, load_truth

        truth = load_truth(world)

    def entry(name: str, rows: list[dict]) -> dict:
        out = {"set": name, "pairs": len(rows)}
        if truth is not None:
            figures = label_precision(rows, truth)
            out.update(precision=figures["precision"], known=figures["known"])
        return out

    stage2_rows = _rows(storage.join(output, "stage2", "pairs"))
    curated = [r for r in stage2_rows if r["status"] == "kept"]
    unflipped = [r for r in curated if not (r["reason"] or "").startswith("flipped:")]
    decided = [r for r in stage2_rows if r["reason"] != "stage1_silver" and not (r["reason"] or "").startswith("flipped:")
               and r["status"] in ("kept", "dropped")]
    stages = [
        entry("pool after preprocess", _rows(storage.join(output, "preprocess", "pairs"), "kept")),
        entry("D_gold (humans)", read_kept(s1["gold"])),
        entry("D_silver after Stage 1", read_kept(s1["silver"])),
        entry("Stage 2 pool pairs decided", decided),
        entry("Stage 2 kept (no flips)", unflipped),
        entry("Stage 2 curated (+flipped)", curated),
    ]
    rm_bench = (results.get("benchmarks") or {}).get("rm_bench") or {}
    report = {
        "stages": stages,
        "filter": filter_quality(decided, truth) if truth is not None else None,
        "stage1": [{k: m.get(k) for k in ("iteration", "silver_pairs", "gold_pairs", "gold_accuracy", "gold_wrong",
                                           "retrieved", "pairs_added", "judge_agreement", "position_bias_rate")}
                   for m in s1["metrics"]],
        "stage2_rules": s2["rules"],
        "final_rm": {"gold_accuracy": final_rm["best"]["val_accuracy"], "train_pairs": final_rm["train_pairs"],
                     "heldout_rm_bench_score": rm_bench.get("score"), "model": final_rm["model"]},
        "seconds": round(seconds, 1),
        "step_seconds": round(sum(t["seconds"] for t in step_times or []), 1),
        "invocations": len({t["invocation"] for t in step_times or []}) or 1,
    }
    report["plots"] = plot(report, output) if not storage.is_uri(output) else []
    report["markdown"] = markdown(report)
    storage.write_text(storage.join(output, "report.md"), report["markdown"])
    storage.write_json(storage.join(output, "report.json"), {k: v for k, v in report.items() if k != "markdown"})
    return report


def markdown(report: dict) -> str:
    has_truth = any("precision" in r for r in report["stages"])
    lines = ["## Pairs per stage", "",
             "| set | pairs | label precision vs truth |" if has_truth else "| set | pairs |",
             "|---|---:|---:|" if has_truth else "|---|---:|"]
    for r in report["stages"]:
        precision = "-" if r.get("precision") is None else f"{r['precision']:.3f} ({r['known']} known)"
        lines.append(f"| {r['set']} | {r['pairs']} | {precision} |" if has_truth else f"| {r['set']} | {r['pairs']} |")
    if report["filter"]:
        f = report["filter"]
        lines += ["", f"Stage 2 filter against the truth: precision {f['precision']}, recall {f['recall']} "
                      f"(right labels kept {f['true_kept']}, wrong kept {f['wrong_kept']}, right dropped "
                      f"{f['right_dropped']}, wrong dropped {f['wrong_dropped']})."]
    lines += ["", "## Stage 1 iterations", "", "| iteration | D_silver | D_gold | gold accuracy | gold wrong | retrieved | "
              "added to silver | judge agreement | position bias |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in report["stage1"]:
        lines.append("| " + " | ".join("-" if m[k] is None else (f"{m[k]:.3f}" if isinstance(m[k], float) else str(m[k]))
                                       for k in m) + " |")
    lines += ["", "## Stage 2 rules", "", "| status:rule | pairs |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(report["stage2_rules"].items())]
    rm = report["final_rm"]
    heldout = "-" if rm["heldout_rm_bench_score"] is None else f"{rm['heldout_rm_bench_score']:.1f}"
    lines += ["", "## Final RM", "", f"Trained on {rm['train_pairs']} curated pairs: accuracy on D_gold "
              f"{rm['gold_accuracy']:.3f}; held-out evaluation (RM-Bench format, served over HTTP) {heldout}. "
              f"Model: {rm['model']}", "",
              f"Pipeline time: {report['step_seconds'] / 60:.1f} min in steps over {report['invocations']} "
              f"invocation(s); this invocation {report['seconds']:.0f} s. Plots: " + ", ".join(report["plots"])]
    return "\n".join(lines) + "\n"
