"""What a pilot run measured, read back from its stats.json files and each step's config.yaml.

A pilot is any output folder of jobs/*.py: one job's run, a Stage 1 / Stage 2 run (their steps are
subfolders) or a whole pipeline run (preprocess/, pool/ = the attributes pass, stage1/iter-<i>/...,
stage2/scored, stage2/judged, final_rm/<set>, ...). Every stats.json names its `job`; config.yaml
next to it is the resolved config the step ran with. Per step this gives:
  - how fast it went: work units (records, pairs, tokens, responses) per second per worker (actor,
    vLLM engine, training worker) the config allowed, and what one worker holds (CPUs or GPUs);
  - what its work grows with at a bigger pool (`scales_with`, a size of synpref.planning.budget):
    the raw records, the pool, Stage 2's scored or judged pairs, a curated training set; or nothing,
    for Stage 1, the gold RM and evaluation, whose sizes their own configs set, not the pool.
`pilot_rates` reads across steps the acceptance rates that carry a pool through the loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
# jobs whose stats.json time no work of their own: their steps (subfolders) do, or people do (verify)
UNTIMED = {"pipeline": "its steps are planned one by one", "stage1": "its steps are planned one by one",
           "stage2": "its steps are planned one by one", "verify": "human verification: people's time, not the cluster's"}
# the training set of each of the pipeline's final RMs (jobs/pipeline.py training_sets)
FINAL_SETS = {"curated": "curated", "curated_flipped": "curated_flipped", "raw": "pool", "ceiling": "pool"}
# what the pilot takes when it lacks a stage: no pair lost, every Stage 2 pair judged and kept
DEFAULT_RATES = {"kept_per_record": 1.0, "attributes_quarantined": 0.0, "unconfident": 1.0, "judged": 1.0,
                 "kept": 1.0, "dropped": 0.0, "quarantined": 0.0, "flipped": 0.0, "stage1_taken": 0, "silver_in": 0}


@dataclass
class Step:
    name: str                          # folder relative to the pilot root ("." is the root)
    job: str
    stats: dict
    config: dict
    parents: tuple[str, ...] = ()      # jobs of the enclosing folders, outermost first
    folder: str = ""                   # where it is now
    device: str = "cpu"
    workers: int = 1                   # actors / engines / training workers the config allowed
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    spreads: bool = True               # False: one process (evaluate) that more nodes do not speed up
    unit: str = ""
    work: float | None = None          # units the pilot did (training: None until tokens per pair are known)
    seconds: float | None = None
    rate_per_worker: float | None = None   # units per second per worker
    scales_with: str | None = None
    wall_seconds: float | None = None  # the step's wall time in step_times.json (start-up included)
    training: dict = field(default_factory=dict)  # train_rm: train_pairs, epochs, validation_fraction

    @property
    def timed(self) -> bool:
        return self.rate_per_worker is not None


def _config(folder: Path, job: str) -> dict:
    """The step's resolved config.yaml over conf/<job>.yaml (whose defaults fill anything it lacks)."""
    parts = [OmegaConf.load(p) for p in (REPO / "conf" / f"{job}.yaml", folder / "config.yaml") if p.exists()]
    merged = OmegaConf.merge(*parts) if parts else OmegaConf.create({})
    merged.pop("hydra", None)
    return OmegaConf.to_container(merged, resolve=False)


def _folder_job(folder: Path) -> str | None:
    stats = folder / "stats.json"
    if stats.exists():
        return json.loads(stats.read_text()).get("job")
    step_configs = sorted((folder / "step_config").glob("*.yaml"))  # a step that has not finished yet
    if step_configs:
        return step_configs[0].stem
    return "pipeline" if (folder / "step_times.json").exists() else None


def measure(job: str, stats: dict, cfg: dict) -> dict:
    """The Step fields of one job's run: device, workers and what each holds, work, seconds, rate."""
    if job == "preprocess":
        got = dict(workers=cfg["actors"], cpus_per_worker=cfg["actor_num_cpus"], unit="records",
                   work=stats.get("records_in"))
    elif job == "annotate":
        engine = cfg["engine"]
        cuda = engine["device"] == "cuda"
        got = dict(device=engine["device"], workers=engine["actors"], unit="pairs", work=stats.get("records_in"),
                   cpus_per_worker=0.0 if cuda else engine["cpus_per_actor"],
                   gpus_per_worker=engine["tensor_parallel_size"] if cuda else 0.0)
    elif job == "score":
        cuda, vllm = cfg["device"] == "cuda", cfg["backend"] == "vllm"
        # vllm: `actors` engines per model; transformers: `actors` actors, each holding every model
        workers = cfg["actors"] * (len(cfg.get("models") or [1]) if vllm else 1)
        per = cfg["vllm"] if vllm else cfg["transformers"]
        got = dict(device=cfg["device"], workers=workers, unit="pairs", work=stats.get("pairs_scored"),
                   cpus_per_worker=0.0 if cuda else per["cpus_per_actor"],
                   gpus_per_worker=(per["tensor_parallel_size"] if vllm else per["gpus_per_actor"]) if cuda else 0.0)
    elif job == "train_rm":
        cuda = cfg["device"] == "cuda"
        # tokens/s of each report window (chosen and rejected counted as whole sequences), all workers
        speeds = [h["tokens_per_s"] for h in stats.get("history", []) if h.get("tokens_per_s")]
        validation = (cfg.get("data") or {}).get("validation")
        got = dict(device=cfg["device"], workers=cfg["workers"], unit="tokens",
                   cpus_per_worker=0.0 if cuda else cfg["cpus_per_worker"], gpus_per_worker=1.0 if cuda else 0.0,
                   rate_per_worker=sum(speeds) / len(speeds) / cfg["workers"] if speeds else None,
                   training={"train_pairs": stats.get("train_pairs"), "epochs": cfg["train"]["epochs"],
                             "validation_fraction": 0.0 if validation else cfg["data"]["validation_fraction"]})
        return got
    elif job == "evaluate":
        got = dict(device=cfg.get("device", "cpu"), workers=1, unit="responses", work=stats.get("responses"),
                   spreads=False)
    else:
        return {}
    seconds = stats.get("seconds")
    got["seconds"] = seconds
    if got.get("work") and seconds:
        got["rate_per_worker"] = got["work"] / seconds / got["workers"]
    return got


def scales_with(job: str, name: str, parents: tuple[str, ...]) -> str | None:
    """What the step's work grows with at the target (a size of budget.target_sizes), or None (fixed)."""
    parts = name.split("/") if name != "." else []
    if job == "preprocess":
        return "raw"
    if "stage1" in parents:  # Stage 1's sets grow with its iterations and human budget, not the pool
        return None
    if "stage2" in parents:  # the gold RM (train_rm) trains on D_gold: fixed
        return {"score": "stage2_scored", "annotate": "stage2_judged"}.get(job)
    if job == "train_rm" and len(parts) >= 2 and parts[-2] == "final_rm":
        return FINAL_SETS.get(parts[-1], "pool")
    if "pipeline" in parents:  # pool/ is the attributes pass; heldout_scored and evaluate are fixed
        return "pool" if job == "annotate" else None
    return "pool" if job in ("annotate", "score", "train_rm") else None  # a job run on its own over a pool


def read_pilot(root: str | Path) -> list[Step]:
    """Every stats.json under `root` as a Step (untimed ones too: Stage 1 and 2 carry the rates)."""
    root = Path(root)
    times = {}
    for path in [root / "step_times.json", *root.glob("*/step_times.json")]:
        for entry in json.loads(path.read_text()) if path.exists() else []:
            times[entry["output"].rstrip("/")] = entry["seconds"]  # the latest invocation wins
    steps = []
    # in the order the steps finished (a pipeline's order), which each stats.json's time keeps
    for stats_path in sorted(root.rglob("stats.json"), key=lambda p: (p.stat().st_mtime, str(p))):
        folder = stats_path.parent
        stats = json.loads(stats_path.read_text())
        job = stats.get("job")
        if not job:
            continue
        name = folder.relative_to(root).as_posix()
        inside = folder.relative_to(root).parts
        ancestors = [root / Path(*inside[:i]) for i in range(len(inside))]  # root, ..., the parent folder
        parents = tuple(j for j in (_folder_job(a) for a in ancestors) if j)
        cfg = _config(folder, job)
        step = Step(name=name, job=job, stats=stats, config=cfg, parents=parents, folder=str(folder),
                    **measure(job, stats, cfg))
        step.scales_with = scales_with(job, name, parents)
        wall = [s for out, s in times.items() if out == str(folder) or out.endswith("/" + name)]
        step.wall_seconds = wall[-1] if wall else None
        steps.append(step)
    return steps


def pilot_rates(steps: list[Step]) -> tuple[dict, list[str]]:
    """The acceptance rates (and Stage 1's fixed counts) the pilot shows, and the keys it could not
    measure (DEFAULT_RATES stand in for them)."""
    rates, measured = dict(DEFAULT_RATES), set()
    first = {}
    for s in steps:
        first.setdefault((s.job, s.scales_with), s)
    pre, attr = first.get(("preprocess", "raw")), first.get(("annotate", "pool"))
    stage2 = next((s.stats for s in steps if s.job == "stage2"), None)
    if pre and pre.stats.get("records_in"):
        rates["kept_per_record"] = pre.stats["totals"]["kept"] / pre.stats["records_in"]
        measured.add("kept_per_record")
    if attr and attr.stats.get("records_in"):
        rates["attributes_quarantined"] = attr.stats["totals"]["quarantined"] / attr.stats["records_in"]
        measured.add("attributes_quarantined")
    if stage2 and stage2.get("pairs_in"):
        scored, pairs_in = max(stage2["pool_scored"], 1), stage2["pairs_in"]
        rates.update(unconfident=stage2["unconfident"] / scored, judged=stage2["judged"] / scored,
                     kept=stage2["kept"] / pairs_in, dropped=stage2["dropped"] / pairs_in,
                     quarantined=stage2["quarantined"] / pairs_in, flipped=stage2["flipped_added"] / pairs_in,
                     silver_in=stage2["silver_in"])
        measured |= {"unconfident", "judged", "kept", "dropped", "quarantined", "flipped", "silver_in"}
        if attr:  # the pool pairs Stage 1 took into D_gold / D_silver: Stage 2 leaves them out
            rates["stage1_taken"] = max(attr.stats["totals"]["kept"] - stage2["pool_scored"], 0)
            measured.add("stage1_taken")
    return rates, sorted(set(DEFAULT_RATES) - measured)
