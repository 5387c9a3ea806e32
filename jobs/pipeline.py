"""The whole curation loop from one command (DESIGN.md sections 1-5):

  world (demo only) -> preprocess -> attributes of the pool -> human seed of D_gold -> Stage 1 -> Stage 2
  -> final RM on the curated pool -> serve it -> evaluate it over HTTP -> report

Each step is one of jobs/*.py (synpref.runner.steps) writing its own folder under `output`; a re-run skips
the finished ones, so a killed pipeline resumes where it stopped. With `world.enabled` (the default:
`make demo`) the input is a demo world whose truth is known (synpref.demo.world), a simulated annotator
plays the human verifier, and the report gives the label precision against the truth before and after
each stage. Otherwise data.raw is the input and the human verdicts are awaited (the job stops with
exit 3 and says where the worksheets are and where the verdicts go).

    python jobs/pipeline.py                                   # the demo: outputs/demo (make demo)
    python jobs/pipeline.py world.pairs=2000 stage1.iterations=4 output=outputs/demo-big
    ray job submit --working-dir . -- python jobs/pipeline.py world.enabled=false data.raw=s3://b/raw \
        output=s3://b/run stage1.train_rm.device=cuda ...
Writes: output/report.md + report.json (per stage: pairs kept, label precision), plots, and every step's folder.
"""

import contextlib
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
import time
import urllib.request
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.record import storage  # noqa: E402
from synpref.record.pairs_io import kept_path  # noqa: E402
from synpref.runner import console, runs, steps  # noqa: E402
from synpref.runner.errors import JobError  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402
from synpref.verification.waiting import ensure_verdicts  # noqa: E402


CURATED, CEILING = "curated", "ceiling"
ABLATION_SETS = ("raw", "curated_flipped", CEILING)


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if not cfg.world.enabled and not cfg.data.raw:
        problems.append("data.raw: give raw preference data, or world.enabled=true (the demo world)")
    if cfg.world.enabled and (cfg.world.pairs < 1 or not 0.0 <= cfg.world.noise <= 1.0):
        problems.append(f"world.pairs={cfg.world.pairs}, world.noise={cfg.world.noise}: at least 1 pair, "
                        "a noise share in [0, 1]")
    if cfg.gold_seed < 1:
        problems.append(f"gold_seed={cfg.gold_seed}: the seed of D_gold needs at least 1 pair")
    unknown = set(cfg.ablation.sets) - set(ABLATION_SETS)
    if unknown:
        problems.append(f"ablation.sets: {sorted(unknown)} unknown; the sets are {list(ABLATION_SETS)}")
    return problems


class StepLog:
    """Every step every invocation ran, with its wall time (output/step_times.json): the report's
    pipeline time when the run was resumed or re-run in pieces."""

    def __init__(self, path: str, planned: int):
        self.path, self.invocation = path, time.strftime("%Y-%m-%dT%H:%M:%S")
        self.planned, self.count = planned, 0
        self.lock = threading.Lock()  # steps of the ablation run side by side

    def step(self, job: str, settings, output: str, where: str, what: str, live: bool | None = None) -> dict:
        started = time.time()
        with self.lock:
            self.count += 1
            label = f"[{self.count:>2}/{self.planned}] {what}"
        stats = steps.run_job(job, settings, output=output, where=where, label=label, live=live)
        with self.lock:
            times = storage.read_json(self.path) if storage.exists(self.path) else []
            times.append({"invocation": self.invocation, "job": job, "output": output,
                          "seconds": round(time.time() - started, 1)})
            storage.write_json(self.path, times)
        return stats

    def times(self) -> list[dict]:
        return storage.read_json(self.path) if storage.exists(self.path) else []


def write_world(cfg: DictConfig, folder: str) -> dict:
    def write() -> dict:
        from synpref.demo.pool import BROKEN_ROWS
        from synpref.demo.world import write_demo_world

        w = cfg.world
        counts = write_demo_world(folder, n_pairs=w.pairs, noise=w.noise, heldout=w.heldout, seed=w.seed,
                                  families=w.families)
        if w.broken_rows:  # one input line of every broken kind: pre-processing quarantines each with its reason
            Path(folder, "raw", "broken.jsonl").write_bytes(b"\n".join(line for line, _ in BROKEN_ROWS) + b"\n")
            counts["broken_rows"] = len(BROKEN_ROWS)
        return counts

    return runs.once(folder, runs.config_fingerprint(OmegaConf.to_container(cfg.world)), write)


def seed_gold(cfg: DictConfig, log: StepLog, pool: str, folder: str, world: str | None) -> str:
    """D_gold before Stage 1: gold_seed pool pairs verified by humans (objective, low-controversiality first)."""
    export, verdicts, merged = (storage.join(folder, n) for n in ("export", "verdicts", "gold"))
    log.step("verify", steps.merged(cfg.verify, {"action": "export", "data": {"input": pool, "output": export},
                                                 "export": {"n": cfg.gold_seed}}), export, "verify",
             "D_gold seed: pairs exported for people to verify")
    ensure_verdicts(export, verdicts, waiting="The seed of D_gold", simulate_truth=world,
                    error_rate=cfg.human.error_rate, undecidable_rate=cfg.human.undecidable_rate, seed=cfg.world.seed)
    log.step("verify", steps.merged(cfg.verify, {"action": "import", "data": {"exported": export, "output": merged},
                                                 "verdicts": verdicts, "gold": {"existing": None}}), merged, "verify",
             "D_gold seed: the verdicts in")
    return storage.join(merged, "pairs")


def serve_and_evaluate(cfg: DictConfig, log: StepLog, model: str, folder: str, world: str | None) -> dict:
    """Serve the final RM with jobs/serve_rm.py, evaluate it over HTTP with jobs/evaluate.py, stop the server."""
    settings = steps.merged(cfg.evaluate, {"output": folder})
    if world:  # the demo's held-out pairs, as RM-Bench files
        settings = steps.merged(settings, {"benchmarks": {"root": storage.join(world, "benchmarks"), "only": ["rm_bench"]}})
    if runs.marker(folder):  # evaluated before: no server needed
        return storage.read_json(storage.join(folder, "results.json"))
    serve = steps.merged(cfg.serve, {"model": model})
    http = steps.job_config("serve_rm", serve, where="serve").http  # host and port, with serve_rm's defaults
    url = f"http://{http.host}:{http.port}"
    console.say(f"\n=== serve_rm {model} at {url}")
    command, config_folder, temporary = steps.write_step_config("serve_rm", serve, folder, where="serve")
    with contextlib.ExitStack() as cleanup:
        if temporary:
            cleanup.callback(shutil.rmtree, config_folder, ignore_errors=True)
        sink = None if console.verbose() else cleanup.enter_context(open(steps.log_path(folder, "serve_rm"), "w"))
        server = subprocess.Popen(command, cwd=steps.REPO, stdout=sink, stderr=subprocess.STDOUT if sink else None)
        try:
            wait_healthy(server, url, cfg.serve_start_timeout_s)
            log.step("evaluate", steps.merged(settings, {"server": {"url": url}}), folder, "evaluate",
                     "evaluate the served curated RM over HTTP")
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    return storage.read_json(storage.join(folder, "results.json"))


def wait_healthy(server: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while True:
        if server.poll() is not None:
            raise JobError(f"serve_rm exited with {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise JobError(f"serve_rm was not healthy at {url}/health after {timeout_s} s")
        time.sleep(2)


@hydra.main(config_path="../conf", config_name="pipeline", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    steps.check_blocks("pipeline", cfg)
    console.set_verbose(cfg.verbose)
    run = JobRun.start(cfg, job="pipeline", output=cfg.output, check=check_config)
    if run.done:
        return run.stats
    console.say(f"synpref pipeline -> {run.output}\nEach step's full output is in its folder's job.log, the "
                f"pipeline's own in {storage.join(run.output, 'job.log')} (verbose=true shows them here).")
    # Ray's driver messages and the pipeline's own Ray Data writes go to its job.log, not the terminal
    own_log = (contextlib.nullcontext() if storage.is_uri(run.output)
               else console.others_to_log(storage.join(run.output, "job.log")))
    with own_log:
        try:
            return run_steps(cfg, run)
        finally:
            import ray

            ray.shutdown()  # Ray's last driver messages (worker warnings it flushes at exit) go to the job.log too


def run_steps(cfg: DictConfig, run: JobRun) -> dict:
    output, started = run.output, time.time()
    log = StepLog(storage.join(output, "step_times.json"), planned_steps(cfg))
    steps.shared_cluster(cfg.ray.address, cfg.ray.num_cpus)
    world = None
    if cfg.world.enabled:
        world = storage.join(output, "world")
        counts = write_world(cfg, world)
        console.say(f"demo world: {counts['pairs']} pool pairs ({counts['flipped']} with chosen and rejected swapped), "
                f"{counts['heldout']} held out, families {', '.join(counts['families'])}")
        raw, benchmarks = storage.join(world, "raw"), [storage.join(world, "benchmarks")]
    else:
        raw, benchmarks = storage.absolute(cfg.data.raw), None

    pre = storage.join(output, "preprocess")
    pre_settings = steps.merged(cfg.preprocess, {"data": {"input": raw, "output": pre}})
    if benchmarks:  # the demo's held-out pairs must not leak into training
        pre_settings = steps.merged(pre_settings, {"decontam": {"benchmarks": benchmarks}})
    log.step("preprocess", pre_settings, pre, "preprocess", "preprocess: parse, drop, decontaminate, dedup")

    pool = storage.join(output, "pool")
    log.step("annotate", steps.merged(cfg.attributes, {
        "data": {"input": kept_path(storage.join(pre, "pairs")), "output": pool},
        "judging": {"enabled": False}}), pool, "attributes", "attributes of every pair (vLLM)")
    pool_pairs = storage.join(pool, "pairs")

    gold = seed_gold(cfg, log, pool_pairs, storage.join(output, "gold-seed"), world)

    stage1 = storage.join(output, "stage1")
    human = steps.merged(cfg.stage1.get("human", {}), {"simulate": world, "error_rate": cfg.human.error_rate,
                                                       "undecidable_rate": cfg.human.undecidable_rate})
    s1 = log.step("stage1", steps.merged(cfg.stage1, {
        "data": {"pool": pool_pairs, "gold": gold}, "output": stage1, "human": human}), stage1, "stage1",
        f"Stage 1: {cfg.stage1.get('iterations') or steps.job_config('stage1', {}).iterations} iteration(s) of "
        "train, retrieve, judge, verify")

    stage2 = storage.join(output, "stage2")
    measured = {}
    if not cfg.stage2.get("judges_on_gold", True) and s1.get("judge_threshold") is not None:
        # the judges were measured on D_gold in Stage 1: Stage 2 labels with the threshold chosen there
        measured = {"annotate": {"judging": {"logprob": {"threshold": s1["judge_threshold"]}}}}
    s2 = log.step("stage2", steps.merged(cfg.stage2, measured, {
        "data": {"pool": pool_pairs, "gold": s1["gold"], "silver": s1["silver"]}, "best_rm": s1["best_rm"],
        "output": stage2}), stage2, "stage2", "Stage 2: gold RM, score the pool, judge the unsure, keep rule")

    # the paper's ablation: final RMs trained the same way on each training set (curated is the one served)
    final = train_final_rms(cfg, log, output, training_sets(cfg, output, pre, stage2, world), s1["gold"])
    heldout = None
    if world:  # every final RM on the held-out truth, one scoring pass
        heldout = storage.join(output, "heldout_scored")
        log.step("score", steps.merged(cfg.heldout_score, {
            "data": {"input": storage.join(world, "heldout", "pairs"), "output": heldout},
            "models": [{"name": name, "path": stats["model"]} for name, stats in final.items()]}),
            heldout, "heldout_score", "every final RM on the held-out truth")
    results = serve_and_evaluate(cfg, log, final[CURATED]["model"], storage.join(output, "evaluate"), world)

    from synpref.curation.report import build_report
    from synpref.curation.report_markdown import terminal_summary

    report = build_report(output=output, world=world, s1=s1, s2=s2, final=final, heldout=heldout, results=results,
                          seconds=time.time() - started, step_times=log.times())
    console.say("\n" + terminal_summary(report) + f"\nThe whole report: {storage.join(output, 'report.md')}")
    return run.finish({"report": storage.join(output, "report.md"), "plots": report["plots"]})


def train_final_rms(cfg: DictConfig, log: StepLog, output: str, sets: dict[str, str], gold: str) -> dict[str, dict]:
    """One final RM per training set, trained the same way (final_rm); `ablation.parallel` of them at
    once, each on the cluster's CPUs shared out between them (startup and data loading overlap)."""
    parallel = max(1, min(cfg.ablation.parallel, len(sets)))
    share = {} if parallel == 1 else {"cpus_per_worker": max(1, cfg.final_rm.get("cpus_per_worker", 1) // parallel)}

    def train(name: str, path: str) -> dict:
        folder = storage.join(output, "final_rm", name)
        return log.step("train_rm", steps.merged(cfg.final_rm, share, {
            "output": folder, "data": {"train": path, "validation": gold}}), folder, "final_rm",
            f"final RM on the {name} pairs", live=False if parallel > 1 else None)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(train, name, path) for name, path in sets.items()}
        return {name: future.result() for name, future in futures.items()}


def ablation_sets(cfg: DictConfig) -> list[str]:
    """ablation.sets, less the ceiling where no truth is known (real data)."""
    return [name for name in cfg.ablation.sets if name != CEILING or cfg.world.enabled]


def planned_steps(cfg: DictConfig) -> int:
    finals = 1 + (len(ablation_sets(cfg)) if cfg.ablation.enabled else 0)
    return 6 + finals + (1 if cfg.world.enabled else 0) + 1


def training_sets(cfg: DictConfig, output: str, pre: str, stage2: str, world: str | None) -> dict[str, str]:
    """The final RMs' training sets: the curated pool (Stage 2 kept, recycled flips left out) and,
    with ablation.enabled, those of ablation.sets: the raw pool, the curated pool with the recycled
    flips, the pool with its true labels (the demo's ceiling, only where there is a world)."""
    import ray

    from synpref.curation.stage2 import is_recycled

    curated = storage.join(output, "curated")
    kept = kept_path(storage.join(stage2, "pairs"))
    runs.once(curated, runs.config_fingerprint({"from": kept}), lambda: ray.data.read_parquet(kept).filter(
        lambda row: not is_recycled(row)).write_parquet(storage.join(curated, "pairs")))
    sets = {CURATED: storage.join(curated, "pairs")}
    if cfg.ablation.enabled:
        paths = {"raw": kept_path(storage.join(pre, "pairs")), "curated_flipped": kept,
                 CEILING: storage.join(world, "ceiling", "pairs") if world else None}
        sets.update({name: paths[name] for name in ablation_sets(cfg)})
    return sets


if __name__ == "__main__":
    main()
