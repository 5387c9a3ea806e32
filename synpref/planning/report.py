"""A plan as text (printed, and plan.md: pipe tables a terminal and a Markdown viewer both read) and as
a plot of the hours per step."""

from __future__ import annotations

from synpref.planning.budget import CPU_EXTRAPOLATION, GIVEN
from synpref.planning.pilot import UNTIMED


def si(x: float | None, digits: int = 3) -> str:
    """40000000 -> 40.0M, 1234 -> 1.23k, 12.5 -> 12.5."""
    if x is None:
        return "-"
    for bound, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= bound:
            return f"{x / bound:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def hours(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join([line[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *line[1:]])


def measured_table(steps, tokens: dict | None) -> str:
    per_step = (tokens or {}).get("per_step", {})
    rows = []
    for s in steps:
        holds = f"{s.gpus_per_worker:g} GPU" if s.device == "cuda" else f"{s.cpus_per_worker:g} CPU"
        work = (f"{si(s.work)} {s.unit}" if s.work else
                f"{si(s.training['train_pairs'])} pairs x {s.training['epochs']} epochs" if s.training else "-")
        rows.append([s.name, s.job, s.device, s.workers, holds, work,
                     "-" if s.seconds is None else f"{s.seconds:g}", "-" if s.wall_seconds is None else f"{s.wall_seconds:g}",
                     f"{si(s.rate_per_worker)} {s.unit}/s", per_step.get(s.name, "-"), s.scales_with or "fixed"])
    return table(["step", "job", "device", "workers", "per worker", "work", "seconds", "wall s", "rate per worker",
                  "tokens/pair", "grows with"], rows)


def rates_line(rates: dict, unmeasured: list[str]) -> str:
    """The acceptance rates the pilot measured (keys of pilot.DEFAULT_RATES it could not are left out)."""
    r, have = rates, set(rates) - set(unmeasured)
    parts = []
    if "kept_per_record" in have:
        parts.append(f"pre-processing keeps {r['kept_per_record']:.4f} pairs per record")
    if "attributes_quarantined" in have:
        parts.append(f"the attributes pass quarantines {r['attributes_quarantined']:.4f}")
    if "unconfident" in have:
        parts.append(f"Stage 2 of the pairs scored: unconfident {r['unconfident']:.4f}, judged {r['judged']:.4f}; of the "
                     f"pairs in: kept {r['kept']:.4f}, dropped {r['dropped']:.4f}, quarantined {r['quarantined']:.4f}, "
                     f"flipped back {r['flipped']:.4f}; {r['silver_in']} D_silver pairs join it")
    if "stage1_taken" in have:
        parts.append(f"Stage 1 took {r['stage1_taken']} pool pairs (a fixed count)")
    return "; ".join(parts) or "none measured (no preprocess, attributes pass or Stage 2 in the pilot)"


SIZE_WORDS = {"raw": "raw pairs", "pool": "pool", "stage2_scored": "Stage 2 scores", "stage2_judged": "judges",
              "curated": "curated", "curated_flipped": "curated + flipped"}


def budget_table(plan: dict) -> str:
    rows = [[r["step"], r["kind"], r["nodes"], r["workers"] if r["workers"] is not None else "-",
             f"{si(r['work'])} {r['unit']}", f"{si(r['rate_per_node'])} {r['unit']}/s", hours(r["hours"]),
             hours(r["node_hours"]), "-" if r["share"] is None else f"{100 * r['share']:.1f}%", r["source"]]
            for r in plan["rows"]]
    rows.append(["total", "", "", "", "", "", hours(plan["total_hours"]), hours(plan["total_node_hours"]),
                 "100%" if plan["total_hours"] else "-", "" if plan["complete"] else "INCOMPLETE: see the rows with -"])
    return table(["step", "node kind", "nodes", "workers", "work", "rate per node", "hours", "node-hours", "share",
                  "figure from"], rows)


def node_lines(plan: dict) -> list[str]:
    lines = []
    for n in plan["one_more_node"]:
        if not n["steps"]:
            change = "no step runs there: nothing changes"
        elif n["nodes"] == 0:
            change = f"runs {', '.join(n['steps'])} ({hours(n.get('hours_with_one'))} h on one node)"
        else:
            change = (f"-{hours(n['hours_saved'])} h ({hours(plan['total_hours'])} -> {hours(n['total_after'])} h; "
                      f"{', '.join(n['steps'])}); node-hours unchanged")
        ceiling = f"; the file's max_workers is {n['nodes']}: raise it" if n["above_max_workers"] else ""
        lines.append(f"- {n['kind']} {n['nodes']} -> {n['to']}: {change}{ceiling}")
    return lines


def notes(plan: dict, steps) -> list[str]:
    rows = plan["rows"]
    out = []
    extrapolated = [r["step"] for r in rows if r["source"] == CPU_EXTRAPOLATION]
    if extrapolated:
        out.append(f"CPU extrapolation ({', '.join(extrapolated)}): the pilot's rate per worker on its CPUs times the "
                   "workers that fit a node's CPUs, linear in nodes; a CPU pilot cannot measure a GPU, so a GPU "
                   "node's GPUs are not counted. For GPU steps give placement.<job>=<gpu kind> and "
                   "throughput.<job>.<kind>=<units/s per node> (tokens/s for train_rm).")
    idle_gpus = [f"{r['step']} (throughput.{r['job']}.{r['kind']})" for r in rows
                 if r["source"] == CPU_EXTRAPOLATION and r["kind"] in plan["gpu_kinds"]]
    if idle_gpus:
        out.append(f"On GPU nodes from CPU figures, their GPUs idle: {', '.join(idle_gpus)}: give the throughput named.")
    if any(r["source"] != GIVEN for r in rows):
        out.append("Pilot rates include each step's start-up (model load, engine start) within its seconds: "
                   "a small pilot understates the rate a long run reaches.")
    fixed = [s.name for s in steps if s.timed and not s.scales_with]
    if fixed:
        out.append(f"Fixed size, as in the pilot (their own configs set it, not the pool): {', '.join(fixed)}.")
    untimed = sorted({f"{s.name} ({s.job}: {UNTIMED.get(s.job, 'no timing in its stats.json')})"
                      for s in steps if not s.timed})
    if untimed:
        out.append("Not planned: " + "; ".join(untimed) + ".")
    jobs = {s.job for s in steps} | {p for s in steps for p in s.parents}
    unseen = [what for job, what in (("stage1", "Stage 1's embedding of the whole pool and its searches"),
                                     ("stage2", "Stage 2's own passes over the pool (leaving out D_gold and "
                                                "D_silver, the keep rule)")) if job in jobs]
    if unseen:
        out.append(f"No stats.json times {' or '.join(unseen)}: they grow with the pool but are not in the plan.")
    if plan["tokens_per_pair"]:
        scaled = ", ".join(f"{r['step']} x{r['length_factor']:.3g}" for r in rows if r["length_factor"] != 1.0)
        out.append(f"Target pairs of {plan['tokens_per_pair']:g} tokens: pairs/s and records/s rates scaled by the "
                   f"step's pilot tokens per pair / the target's ({scaled or 'no step measured'}).")
    out.append("Steps run one after another (as jobs/pipeline.py runs them): total hours are their sum; node-hours "
               "count the nodes of the kind each step runs on (the autoscaler lets idle nodes go).")
    return ["- " + n for n in out]


def markdown(plan: dict, steps, *, run: str, cluster: str | None, tokens: dict | None, unmeasured: list[str]) -> str:
    sizes, b = plan["sizes"], plan["bottleneck"]
    assumed = ", ".join(f"{k}={plan['rates'][k]}" for k in plan["assumed"])
    token_line = (f"tokens per pair (chosen + rejected sequences, up to {tokens['sample']} kept pairs of each step's "
                  f"input) with the tokenizer of {tokens['tokenizer']}" if tokens else
                  "tokens per pair: not measured (no model folder with a tokenizer in the pilot)")
    parts = [
        f"# Plan: {plan['pairs']:,.0f} pairs on {cluster or 'the nodes given'}",
        f"Pilot {run}: {len(steps)} stats.json, {sum(s.timed for s in steps)} timed steps; {token_line}.",
        "## Measured in the pilot (a worker: an actor, a vLLM engine or a training worker)",
        measured_table([s for s in steps if s.timed], tokens),
        "Acceptance in the pilot: " + rates_line(plan["rates"], unmeasured),
        "## Target",
        " -> ".join(f"{SIZE_WORDS[k]} {si(sizes[k])}" for k in ["raw", *[u for u in plan["sizes_used"] if u != "raw"]])
        + (f" (assumed, not in the pilot: {assumed})" if assumed else ""),
        "Nodes: " + "; ".join(f"{k['alias']} = {k['name']}: {k['count']} x ({k['cpus']:g} CPU"
                              + (f", {k['gpus']:g} GPU" if k["gpus"] else "") + ")" for k in plan["kinds"]),
        "## Budget",
        budget_table(plan),
        (f"Bottleneck: {b['step']} ({hours(b['hours'])} h, {100 * b['share']:.1f}% of the time, on {b['kind']} nodes)"
         if b else "Bottleneck: none (no step has a figure)"),
        "One more node:\n" + "\n".join(node_lines(plan)),
        "## Notes\n" + "\n".join(notes(plan, steps)),
    ]
    return "\n\n".join(parts) + "\n"


def plot_hours(plan: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in plan["rows"] if r["hours"] is not None]
    kinds = sorted({r["kind"] for r in rows})
    colours = {k: f"C{i}" for i, k in enumerate(kinds)}
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.6))
    ax.barh([f"{r['step']} ({r['job']})" for r in rows], [r["hours"] for r in rows], color=[colours[r["kind"]] for r in rows])
    for i, r in enumerate(rows):
        ax.text(r["hours"], i, f" {r['hours']:.2f} h ({100 * r['share']:.0f}%)", va="center", fontsize=8)
    for kind, colour in colours.items():
        ax.barh([], [], color=colour, label=f"{kind} nodes")
    ax.invert_yaxis()
    ax.set_xlabel("hours")
    ax.set_title(f"{plan['pairs']:,.0f} pairs: {plan['total_hours']:.1f} h in all", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.margins(x=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
