"""Plan a full-size run from a pilot: per step the hours, the node-hours and the share of the total on a
cluster, the bottleneck, and what one more node of each kind would save (synpref.planning).

Reads:  run     -- a pilot's output folder: every stats.json under it (a pipeline, a Stage 1 / Stage 2 run or
                   one job's output) and each step's config.yaml (device, workers, CPUs or GPUs per worker)
        cluster -- a Ray autoscaler YAML or a KubeRay manifest (node kinds, their CPUs / GPUs and max counts)
Writes: output/plan.md (what it prints), plan.json (every figure), plan.png (hours per step), config.yaml.
No Ray: it reads files and does arithmetic (and tokenizes a sample of the pilot's pairs).

    python jobs/plan.py run=outputs/demo pairs=40000000 cluster=cluster/aws.yaml
    python jobs/plan.py run=outputs/demo cluster=cluster/gcp.yaml 'nodes={cpu: 4, gpu: 2}' \
        'placement={annotate: gpu, train_rm: gpu}' 'throughput={annotate: {gpu: 150}, train_rm: {gpu: 400000}}'
"""

import json
import sys
from dataclasses import asdict
from numbers import Number
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.planning.budget import plan  # noqa: E402
from synpref.planning.cluster import read_cluster, with_nodes  # noqa: E402
from synpref.planning.pilot import pilot_rates, read_pilot  # noqa: E402
from synpref.planning.report import markdown, plot_hours  # noqa: E402
from synpref.planning.tokens import measure_tokens_per_pair  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.runner.errors import BadConfig  # noqa: E402
from synpref.runner.job import exits_with_status  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def positive(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool) and value > 0


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if not isinstance(cfg.pairs, int) or cfg.pairs < 1:
        problems.append(f"pairs={cfg.pairs!r}: the target's raw pairs, a whole number of at least 1 (e.g. 40000000)")
    if cfg.tokens_per_pair is not None and not positive(cfg.tokens_per_pair):
        problems.append(f"tokens_per_pair={cfg.tokens_per_pair!r}: null (the pilot's) or a number above 0")
    if not isinstance(cfg.token_sample, int) or cfg.token_sample < 1:
        problems.append(f"token_sample={cfg.token_sample!r}: at least 1 pair")
    if cfg.epochs is not None and (not isinstance(cfg.epochs, int) or cfg.epochs < 1):
        problems.append(f"epochs={cfg.epochs!r}: null (as in the pilot) or at least 1")
    if not cfg.cluster and not cfg.nodes:
        problems.append("cluster: give a cluster file (e.g. cluster=cluster/aws.yaml) or define the node kinds "
                        "in nodes, e.g. 'nodes={cpu: {count: 4, cpus: 32}}'")
    for key, value in (cfg.nodes or {}).items():
        fine = (isinstance(value, int) and value >= 0) if not isinstance(value, DictConfig) else (
            set(value) <= {"count", "cpus", "gpus"} and all(isinstance(v, Number) and v >= 0 for v in value.values()))
        if not fine:
            problems.append(f"nodes.{key}={value!r}: a node count (0 or more) or {{count, cpus, gpus}}")
    for key, per_kind in (cfg.throughput or {}).items():
        if not isinstance(per_kind, DictConfig) or not all(positive(v) for v in per_kind.values()):
            problems.append(f"throughput.{key}={per_kind!r}: {{node kind: units/s of one node}}, each above 0, "
                            "e.g. 'throughput={score: {gpu: 400}}'")
    for key, kind in (cfg.placement or {}).items():
        if not isinstance(kind, str):
            problems.append(f"placement.{key}={kind!r}: the name or alias of a node kind, e.g. gpu")
    return problems


def cluster_file(path: str) -> Path:
    """A cluster file as given, or relative to the repo (cluster/aws.yaml from anywhere)."""
    given = Path(path).expanduser()
    return given if given.exists() or given.is_absolute() else REPO / given


@hydra.main(config_path="../conf", config_name="plan", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    problems = check_config(cfg)
    if problems:
        raise BadConfig(problems, job="plan")
    if storage.is_uri(cfg.run) or not Path(storage.absolute(cfg.run)).is_dir():
        raise BadConfig([f"run={cfg.run}: not a local folder; give a pilot's output folder (copy a remote one first)"],
                        job="plan")
    run = Path(storage.absolute(cfg.run))
    steps = read_pilot(run)
    if not any(s.timed for s in steps):
        raise BadConfig([f"run={cfg.run}: no finished step with timings under it (a stats.json of preprocess, "
                         "annotate, score, train_rm or evaluate)"], job="plan")
    cluster = cluster_file(cfg.cluster) if cfg.cluster else None
    if cluster and not cluster.exists():
        raise BadConfig([f"cluster={cfg.cluster}: no such file (see cluster/)"], job="plan")
    settings = OmegaConf.to_container(cfg, resolve=True)
    try:
        kinds = with_nodes(read_cluster(cluster) if cluster else [], settings["nodes"])
        tokens = measure_tokens_per_pair(steps, cfg.token_sample)
        rates, unmeasured = pilot_rates(steps)
        result = plan(steps, kinds, pairs=cfg.pairs, rates=rates, tokens_per_pair=cfg.tokens_per_pair,
                      pilot_tokens_per_pair=tokens["tokens_per_pair"] if tokens else None,
                      placement=settings["placement"], throughput=settings["throughput"], epochs=cfg.epochs,
                      unmeasured=unmeasured, step_tokens=tokens["per_step"] if tokens else None)
    except ValueError as err:
        raise BadConfig([str(err)], job="plan") from None
    text = markdown(result, steps, run=str(run), cluster=cfg.cluster, tokens=tokens, unmeasured=unmeasured)
    print(text)

    output = Path(storage.absolute(cfg.output))
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (output / "plan.md").write_text(text)
    measured = [{k: v for k, v in asdict(s).items() if k not in ("stats", "config")} for s in steps]
    result.update(run=str(run), cluster=str(cluster) if cluster else None, pilot_tokens=tokens, measured=measured)
    (output / "plan.json").write_text(json.dumps(result, indent=1))
    plot_hours(result, str(output / "plan.png"))
    print(f"plan: {output}/plan.md, plan.json, plan.png")
    return result


if __name__ == "__main__":
    main()
