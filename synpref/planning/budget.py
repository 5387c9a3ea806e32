"""The budget of a target pool on a cluster: per step the work, the hours, the node-hours and the
share of the total, the bottleneck, and what one more node of each kind would save.

The model, first order and stated in every plan:
  - sizes: the target's raw pairs flow through the pilot's acceptance rates (`target_sizes`): the
    pool is what pre-processing keeps, Stage 2 scores the annotated pool less what Stage 1 took, the
    judges see the unconfident share, the final RMs train on the kept (and flipped) pairs;
  - placement: a step runs on one node kind (`placement`, else a GPU kind for a CUDA step and a CPU
    kind for a CPU step), on every node of that kind the plan has; steps run one after another, as
    the pipeline runs them, so the total time is their sum;
  - speed: a node does `throughput[step][kind]` units/s when given; else as many workers as fit
    (its CPUs or GPUs over what one worker held in the pilot) each at the pilot's rate per worker,
    linear in workers and nodes. From a CPU pilot that is a CPU extrapolation: it cannot tell what a
    GPU does, so a GPU node's GPUs are not counted without a given throughput;
  - longer pairs: with the target's tokens_per_pair given, every pairs/s or records/s rate is scaled
    by pilot tokens per pair / target tokens per pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from synpref.planning.cluster import NodeKind, find_kind
from synpref.planning.pilot import Step

CPU_EXTRAPOLATION, GPU_PILOT, GIVEN = "CPU extrapolation", "GPU pilot", "given"


def target_sizes(pairs: float, rates: dict) -> dict:
    """The sizes each step's work grows with, for `pairs` raw pairs (records) entering pre-processing."""
    pool = pairs * rates["kept_per_record"]
    annotated = pool * (1 - rates["attributes_quarantined"])
    scored = max(annotated - rates["stage1_taken"], 0.0)
    stage2_in = scored + rates["silver_in"]
    return {"raw": float(pairs), "pool": pool, "stage2_scored": scored, "stage2_judged": scored * rates["unconfident"],
            "curated": stage2_in * rates["kept"], "curated_flipped": stage2_in * (rates["kept"] + rates["flipped"])}


# the acceptance rates each size is computed from (what a plan needs the pilot to have measured)
SIZE_NEEDS = {"raw": [], "pool": ["kept_per_record"],
              "stage2_scored": ["kept_per_record", "attributes_quarantined", "stage1_taken"],
              "stage2_judged": ["kept_per_record", "attributes_quarantined", "stage1_taken", "unconfident"],
              "curated": ["kept_per_record", "attributes_quarantined", "stage1_taken", "silver_in", "kept"],
              "curated_flipped": ["kept_per_record", "attributes_quarantined", "stage1_taken", "silver_in", "kept",
                                  "flipped"]}


def lookup(mapping: dict | None, step: Step):
    """The value `mapping` gives the step: by its folder name, an enclosing folder's, or its job."""
    mapping = mapping or {}
    parts = step.name.split("/")
    for key in ["/".join(parts[:i]) for i in range(len(parts), 0, -1)] + [step.job]:
        if key in mapping:
            return mapping[key]
    return None


def target_work(step: Step, sizes: dict, tokens_per_pair: float | None, epochs: int | None = None) -> float | None:
    """Units of work at the target: the size it scales with (or the pilot's own work when fixed);
    a training step's tokens = pairs x epochs x tokens per pair."""
    if step.unit != "tokens":
        return sizes[step.scales_with] if step.scales_with else step.work
    t = step.training
    if step.scales_with:
        pairs, passes = sizes[step.scales_with] * (1 - t["validation_fraction"]), epochs or t["epochs"]
    else:
        pairs, passes = t["train_pairs"], t["epochs"]
    return pairs * passes * tokens_per_pair if tokens_per_pair and pairs is not None else None


def place(step: Step, kinds: list[NodeKind], placement: dict | None) -> NodeKind:
    chosen = lookup(placement, step)
    if chosen is not None:
        kind = find_kind(kinds, str(chosen))
        if kind is None:
            raise ValueError(f"placement for {step.name}: no node kind {chosen!r} in {[k.alias for k in kinds]}")
        return kind
    wants_gpu = step.device == "cuda"
    return next((k for k in kinds if (k.gpus > 0) == wants_gpu), kinds[0])


def node_rate(step: Step, kind: NodeKind, throughput: dict | None, length_factor: float = 1.0):
    """(units/s of one node of `kind`, workers on one node or None, where the figure comes from)."""
    given = lookup(throughput, step) or {}
    value = given.get(kind.alias, given.get(kind.name))
    if value is not None:
        return float(value), None, GIVEN
    scale = length_factor if step.unit in ("records", "pairs") else 1.0
    if step.device == "cuda" and kind.gpus > 0:
        per_node, source = math.floor(kind.gpus / step.gpus_per_worker), GPU_PILOT
    elif step.device == "cpu" and kind.cpus > 0:
        per_node, source = math.floor(kind.cpus / step.cpus_per_worker), CPU_EXTRAPOLATION
    else:  # a GPU pilot's rate says nothing about a CPU node
        return None, None, f"no figure: give throughput.{step.job}.{kind.alias}"
    if per_node == 0:
        need = f"{step.gpus_per_worker:g} GPU" if step.device == "cuda" else f"{step.cpus_per_worker:g} CPU"
        return None, 0, f"no worker fits: one needs {need}, a {kind.alias} node has less"
    per_node = 1 if not step.spreads else per_node
    return step.rate_per_worker * scale * per_node, per_node, source


@dataclass
class Row:
    step: str
    job: str
    kind: str
    nodes: int                     # nodes the step uses
    workers: int | None            # workers the step runs (actors=..., workers=... at the target)
    work: float | None
    unit: str
    rate_per_node: float | None
    source: str
    hours: float | None
    node_hours: float | None
    spreads: bool = True           # False: one process, which more nodes do not speed up
    share: float | None = None
    tokens_per_pair: float | None = None  # of the target's pairs this step sees
    length_factor: float = 1.0     # its pilot rate x this: pilot tokens per pair / the target's


def budget_row(step: Step, kind: NodeKind, work: float | None, throughput: dict | None,
               length_factor: float = 1.0) -> Row:
    rate, per_node, source = node_rate(step, kind, throughput, length_factor)
    nodes = min(kind.count, 1) if not step.spreads else kind.count
    hours = node_hours = None
    if work is None:
        source = "tokens per pair unknown: give tokens_per_pair"
    elif not nodes:
        source = f"no {kind.alias} nodes: give nodes.{kind.alias}"
    elif rate:
        hours = work / (rate * nodes) / 3600
        node_hours = hours * nodes
    return Row(step.name, step.job, kind.alias, nodes, per_node * nodes if per_node is not None else None, work,
               step.unit, rate, source, hours, node_hours, step.spreads)


def one_more_node(rows: list[Row], kinds: list[NodeKind], total_hours: float) -> list[dict]:
    """Per kind: the hours one more node saves. Linear scaling: a step on n nodes takes n/(n+1) of its
    time on n+1, so it saves hours/(n+1), and its node-hours stay the same. Steps on one process do
    not change; a kind with no nodes yet would run its steps in the hours shown."""
    out = []
    for kind in kinds:
        mine = [r for r in rows if r.kind == kind.alias]
        saved = sum(r.hours / (kind.count + 1) for r in mine if r.hours is not None and r.spreads and kind.count)
        item = {"kind": kind.alias, "nodes": kind.count, "to": kind.count + 1, "hours_saved": saved,
                "total_after": total_hours - saved, "steps": [r.step for r in mine],
                "above_max_workers": kind.max_workers is not None and kind.count + 1 > kind.max_workers}
        if kind.count == 0:  # from none to one: the steps that could not run
            item["hours_with_one"] = sum(r.work / r.rate_per_node / 3600 for r in mine if r.work and r.rate_per_node)
        out.append(item)
    return out


def plan(steps: list[Step], kinds: list[NodeKind], *, pairs: float, rates: dict, tokens_per_pair: float | None,
         pilot_tokens_per_pair: float | None = None, placement: dict | None = None, throughput: dict | None = None,
         epochs: int | None = None, unmeasured: list[str] = (), step_tokens: dict | None = None) -> dict:
    """The budget of every timed step of the pilot at `pairs` raw pairs on `kinds`. `tokens_per_pair`:
    the target's (None: the pilot's); `step_tokens`: each step's input as measured, else
    `pilot_tokens_per_pair`; `unmeasured`: the rates the pilot lacks (those the plan needs are assumed)."""
    sizes = target_sizes(pairs, rates)
    used = [size for size in SIZE_NEEDS if any(s.timed and s.scales_with == size for s in steps)]
    assumed = sorted({k for size in used for k in SIZE_NEEDS[size]} & set(unmeasured))
    rows = []
    for s in (s for s in steps if s.timed):
        own = (step_tokens or {}).get(s.name) or pilot_tokens_per_pair  # the pilot's pairs of this step
        factor = own / tokens_per_pair if tokens_per_pair and own else 1.0
        row = budget_row(s, place(s, kinds, placement), target_work(s, sizes, tokens_per_pair or own, epochs),
                         throughput, factor)
        row.tokens_per_pair = tokens_per_pair or own
        row.length_factor = factor if row.source != GIVEN and s.unit in ("records", "pairs") else 1.0  # as applied
        rows.append(row)
    total = sum(r.hours for r in rows if r.hours is not None)
    for r in rows:
        r.share = r.hours / total if r.hours is not None and total else None
    timed = [r for r in rows if r.hours is not None]
    bottleneck = max(timed, key=lambda r: r.hours) if timed else None
    return {"pairs": pairs, "sizes": sizes, "sizes_used": used, "rates": rates, "assumed": assumed,
            "tokens_per_pair": tokens_per_pair, "rows": [asdict(r) for r in rows],
            "total_hours": total, "total_node_hours": sum(r.node_hours for r in timed),
            "complete": len(timed) == len(rows), "bottleneck": asdict(bottleneck) if bottleneck else None,
            "one_more_node": one_more_node(rows, kinds, total),
            "kinds": [asdict(k) | {"alias": k.alias} for k in kinds], "gpu_kinds": [k.alias for k in kinds if k.gpus]}
