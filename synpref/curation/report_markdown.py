"""report.json -> report.md: the verdict first, then the tables a reader checks it with."""

from __future__ import annotations

from synpref.demo.world import FAMILIES


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def ci(interval) -> str:
    return f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""


def stage_tables(truth: dict) -> list[str]:
    lines = ["## Label precision and recall by stage (against the demo world's truth)", "",
             "Recall: the set's correctly labelled pairs over the pool's correctly labelled pairs outside D_gold.", "",
             "| set | pairs | precision | recall | learnable: precision | recall | hard: precision | recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, g in truth["stages"].items():
        lines.append(f"| {name} | {g['overall']['pairs']} | {fmt(g['overall']['precision'])} | "
                     f"{fmt(g['overall']['recall'])} | {fmt(g['learnable']['precision'])} | "
                     f"{fmt(g['learnable']['recall'])} | {fmt(g['hard']['precision'])} | {fmt(g['hard']['recall'])} |")
    lines += ["", "Per family, precision / recall (pairs):", "", "| set | " + " | ".join(FAMILIES) + " |",
              "|---|" + "---:|" * len(FAMILIES)]
    for name, g in truth["stages"].items():
        cells = [f"{fmt(f['precision'], 2)} / {fmt(f['recall'], 2)} ({f['pairs']})" for f in
                 (g["families"][family] for family in FAMILIES)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    f = truth["filter"]
    lines += ["", "Stage 2's keep rule as a classifier of \"this label is right\", over the pool pairs it decided: "
              + "; ".join(f"{group} precision {fmt(f[group]['precision'])}, recall {fmt(f[group]['recall'])} "
                          f"(base rate {fmt(f[group]['base_rate'])})" for group in ("overall", "learnable", "hard")) + "."]
    return lines


def judge_tables(report: dict) -> list[str]:
    lines = []
    cal = report.get("judge_calibration")
    if cal and cal.get("pairs"):
        lines += ["## The judges on D_gold", "",
                  f"Threshold {fmt(cal.get('threshold'), 4)} ({cal.get('threshold_from')}): accuracy "
                  f"{fmt(cal.get('accuracy'))}{ci(cal.get('accuracy_95ci'))} on {cal.get('decided')} decided of "
                  f"{cal.get('pairs')} gold pairs (coverage {fmt(cal.get('coverage'))}), expected calibration error "
                  f"{fmt(cal.get('ece'))}, position-bias rate {fmt(cal.get('position_bias_rate'))}.", ""]
    truth = report.get("truth") or {}
    judged = truth.get("judges_on_gold")
    if judged:
        lines += ["| family | gold pairs | coverage | accuracy (decided) | position bias |", "|---|---:|---:|---:|---:|"]
        for name in ("overall", "learnable", "hard"):
            g = judged[name]
            lines.append(f"| **{name}** | {g['pairs']} | {fmt(g['coverage'])} | {fmt(g['accuracy'])}"
                         f"{ci(g['accuracy_95ci'])} | {fmt(g['position_bias_rate'])} |")
        for family, g in judged["families"].items():
            lines.append(f"| {family} | {g['pairs']} | {fmt(g['coverage'])} | {fmt(g['accuracy'])}"
                         f"{ci(g['accuracy_95ci'])} | {fmt(g['position_bias_rate'])} |")
        lines.append("")
    return lines


def ablation_tables(report: dict) -> list[str]:
    heldout = (report.get("truth") or {}).get("heldout")
    lines = ["## Final reward models (the paper's ablation)", ""]
    if heldout:
        lines += ["Held-out accuracy (p > 0.5 on pairs never in the pool), with 95% intervals:", "",
                  "| training set | pairs | overall | learnable | hard | D_gold accuracy |", "|---|---:|---:|---:|---:|---:|"]
    else:
        lines += ["| training set | pairs | D_gold accuracy |", "|---|---:|---:|"]
    for name, f in report["final"].items():
        if heldout:
            h = heldout[name]
            cells = " | ".join(f"{fmt(h[g]['accuracy'])}{ci(h[g]['accuracy_95ci'])}" for g in ("overall", "learnable", "hard"))
            lines.append(f"| {name} | {f['train_pairs']} | {cells} | {fmt(f['gold_accuracy'])} |")
        else:
            lines.append(f"| {name} | {f['train_pairs']} | {fmt(f['gold_accuracy'])} |")
    if heldout:
        lines += ["", "Per family held-out accuracy:", "", "| training set | " + " | ".join(FAMILIES) + " |",
                  "|---|" + "---:|" * len(FAMILIES)]
        for name in report["final"]:
            lines.append(f"| {name} | " + " | ".join(fmt(heldout[name]["families"][f]["accuracy"], 2)
                                                    for f in FAMILIES) + " |")
    gap = report.get("gap_closed")
    if gap:
        lines += ["", f"On the learnable families the gap from the raw pool's RM ({fmt(gap['raw'])}) to the ceiling "
                      f"({fmt(gap['ceiling'])}) is {fmt(gap['gap'])}; the curated pool's RM ({fmt(gap['curated'])}) "
                      f"closes {'-' if gap['closed'] is None else format(gap['closed'], '.0%')} of it."]
    served = report["served"]
    lines += ["", f"The curated pool's RM served over HTTP ({served['source']}): held-out RM-Bench-format score "
                  f"{fmt(served['heldout_rm_bench_score'], 1)}.", ""]
    return lines


def terminal_summary(report: dict) -> str:
    """The demo's last screen: the verdict, the stage and ablation tables, the plots."""
    lines = [report["verdict"], ""]
    if report.get("truth"):
        lines += stage_tables(report["truth"])[4:4 + 2 + len(report["truth"]["stages"])] + [""]
    lines += ablation_tables(report)[2:]
    lines += ["Plots: " + ", ".join(report["plots"]) if report["plots"] else "Plots: none (a storage URI output)"]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    lines = ["# synpref curation report", "", report["verdict"], ""]
    if report.get("truth"):
        lines += stage_tables(report["truth"]) + [""]
    lines += judge_tables(report) + ablation_tables(report)
    lines += ["## Stage 1 iterations", "", "| iteration | D_silver | D_gold | gold accuracy | gold wrong | retrieved | "
              "added to silver | judge agreement | position bias |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in report["stage1"]:
        lines.append("| " + " | ".join(fmt(m[k]) for k in m) + " |")
    lines += ["", "## Stage 2 rules", "", "| status:rule | pairs |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(report["stage2_rules"].items())]
    lines += ["", f"Pipeline time: {report['step_seconds'] / 60:.1f} min in steps over {report['invocations']} "
                  f"invocation(s); this invocation {report['seconds']:.0f} s. Plots: " + ", ".join(report["plots"])]
    return "\n".join(lines) + "\n"
