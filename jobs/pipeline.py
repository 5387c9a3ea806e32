"""The whole curation loop from one command (DESIGN.md sections 1-5):

  world (demo only) -> preprocess -> attributes of the pool -> human seed of D_gold -> Stage 1 -> Stage 2
  -> final RM on the curated pool -> serve it -> evaluate it over HTTP -> report

Each step is one of jobs/*.py (synpref.runner.steps) writing its own folder under `output`; a re-run skips
the finished ones, so a killed pipeline resumes where it stopped. With `world.enabled` (the default:
`make demo`) the input is a demo world whose truth is known (synpref.demo.world), a simulated annotator
plays the human verifier, and the report gives the label precision against the truth before and after
each stage. Otherwise data.raw is the input and the human verdicts are awaited (the job stops with
exit 3 and says where the worksheets are and where the verdicts go).

    python jobs/pipeline.py                                   # the demo: outputs/demo, ~20 min on 2 CPU cores
    python jobs/pipeline.py world.pairs=2000 stage1.iterations=4 output=outputs/demo-big
    ray job submit --working-dir . -- python jobs/pipeline.py world.enabled=false data.raw=s3://b/raw \
        output=s3://b/run stage1.train_rm.device=cuda ...
Writes: output/report.md + report.json (per stage: pairs kept, label precision), plots, and every step's folder.
"""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.record import storage  # noqa: E402
from synpref.runner import steps as subjobs  # noqa: E402
from synpref.verification.verification import verdicts_or_exit  # noqa: E402


# every step every invocation ran, with its wall time: the report's pipeline time when the run was
# resumed or re-run in pieces (set by main to output/step_times.json and this invocation's start)
STEP_LOG = {"path": None, "invocation": None}


def step(job: str, settings, output: str) -> dict:
    started = time.time()
    try:
        stats = subjobs.run_job(job, settings, output=output)
    except subjobs.StepFailed as failure:
        print(failure, file=sys.stderr)
        sys.exit(failure.returncode)
    if STEP_LOG["path"]:
        path = STEP_LOG["path"]
        times = storage.read_json(path) if storage.exists(path) else []
        times.append({"invocation": STEP_LOG["invocation"], "job": job, "output": output,
                      "seconds": round(time.time() - started, 1)})
        storage.write_json(path, times)
    return stats


def write_world(cfg: DictConfig, folder: str) -> dict:
    from synpref.demo.world import write_demo_world

    done = storage.join(folder, "counts.json")
    if not storage.exists(done):
        w = cfg.world
        counts = write_demo_world(folder, n_pairs=w.pairs, noise=w.noise, heldout=w.heldout, seed=w.seed)
        if w.broken_rows:  # one input line of every broken kind: pre-processing quarantines each with its reason
            from synpref.demo.pool import BROKEN_ROWS

            Path(folder, "raw", "broken.jsonl").write_bytes(b"\n".join(line for line, _ in BROKEN_ROWS) + b"\n")
            counts["broken_rows"] = len(BROKEN_ROWS)
        storage.write_json(done, counts)
    return storage.read_json(done)


def seed_gold(cfg: DictConfig, pool: str, folder: str, world: str | None) -> str:
    """D_gold before Stage 1: gold_seed pool pairs verified by humans (objective, low-controversiality first)."""
    export, verdicts, merged = (storage.join(folder, n) for n in ("export", "verdicts", "gold"))
    step("verify", {"action": "export", "data": {"input": pool, "output": export}, "export": {"n": cfg.gold_seed}},
         export)
    verdicts_or_exit(export, verdicts, waiting="The seed of D_gold", simulate_truth=world,
                     error_rate=cfg.human.error_rate, undecidable_rate=cfg.human.undecidable_rate, seed=cfg.world.seed)
    step("verify", {"action": "import", "data": {"exported": export, "output": merged}, "verdicts": verdicts,
                    "gold": {"existing": None}}, merged)
    return storage.join(merged, "pairs")


def serve_and_evaluate(cfg: DictConfig, model: str, folder: str, world: str | None) -> dict:
    """Serve the final RM with jobs/serve_rm.py, evaluate it over HTTP with jobs/evaluate.py, stop the server."""
    settings = subjobs.merged(cfg.evaluate, {"output": folder})
    if world:
        settings = subjobs.merged(settings, {"benchmarks": {
            "root": storage.join(world, "benchmarks"), "only": ["rm_bench"]}})  # held-out demo pairs
    if storage.exists(storage.join(folder, "_SUCCESS")):  # evaluated before: no server needed
        return storage.read_json(storage.join(folder, "results.json"))
    serve = subjobs.merged(cfg.serve, {"model": model})
    http = subjobs.job_config("serve_rm", serve).http  # host and port, with serve_rm's defaults
    url = f"http://{http.host}:{http.port}"
    print(f"\n=== serve_rm {model} at {url}", flush=True)
    server = subprocess.Popen(subjobs.job_command("serve_rm", serve), cwd=subjobs.REPO)
    try:
        deadline = time.time() + cfg.serve_start_timeout_s
        while True:
            if server.poll() is not None:
                sys.exit(f"serve_rm exited with {server.returncode} before it was healthy")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"serve_rm was not healthy at {url}/health after {cfg.serve_start_timeout_s} s")
            time.sleep(2)
        step("evaluate", subjobs.merged(settings, {"server": {"url": url}}), folder)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    return storage.read_json(storage.join(folder, "results.json"))


@hydra.main(config_path="../conf", config_name="pipeline", version_base=None)
def main(cfg: DictConfig) -> dict:
    output = storage.absolute(cfg.output)
    started = time.time()
    STEP_LOG.update(path=storage.join(output, "step_times.json"), invocation=time.strftime("%Y-%m-%dT%H:%M:%S"))
    subjobs.shared_cluster(cfg.ray.address, cfg.ray.num_cpus)
    world = None
    if cfg.world.enabled:
        world = storage.join(output, "world")
        counts = write_world(cfg, world)
        print(f"demo world: {counts}")
        raw, benchmarks = storage.join(world, "raw"), [storage.join(world, "benchmarks")]
    elif cfg.data.raw:
        raw, benchmarks = storage.absolute(cfg.data.raw), None
    else:
        sys.exit("give data.raw (raw preference data) or world.enabled=true (the demo world)")

    pre = storage.join(output, "preprocess")
    pre_settings = subjobs.merged(cfg.preprocess, {"data": {"input": raw, "output": pre}})
    if benchmarks:  # the demo's held-out pairs must not leak into training
        pre_settings = subjobs.merged(pre_settings, {"decontam": {"benchmarks": benchmarks}})
    step("preprocess", pre_settings, pre)

    pool = storage.join(output, "pool")
    step("annotate", subjobs.merged(cfg.attributes, {
        "data": {"input": storage.join(pre, "pairs", "status=kept"), "output": pool},
        "judging": {"enabled": False}}), pool)
    pool_pairs = storage.join(pool, "pairs")

    gold = seed_gold(cfg, pool_pairs, storage.join(output, "gold-seed"), world)

    stage1 = storage.join(output, "stage1")
    human = subjobs.merged(cfg.stage1.get("human", {}), {"simulate": world, "error_rate": cfg.human.error_rate,
                                                           "undecidable_rate": cfg.human.undecidable_rate})
    s1 = step("stage1", subjobs.merged(cfg.stage1, {
        "data": {"pool": pool_pairs, "gold": gold}, "output": stage1, "human": human}), stage1)

    stage2 = storage.join(output, "stage2")
    s2 = step("stage2", subjobs.merged(cfg.stage2, {
        "data": {"pool": pool_pairs, "gold": s1["gold"], "silver": s1["silver"]}, "best_rm": s1["best_rm"],
        "output": stage2}), stage2)

    final = storage.join(output, "final_rm")
    rm = step("train_rm", subjobs.merged(cfg.final_rm, {
        "output": final, "data": {"train": storage.join(stage2, "pairs", "status=kept"), "validation": s1["gold"]}}),
        final)
    results = serve_and_evaluate(cfg, storage.join(final, "model"), storage.join(output, "evaluate"), world)

    from synpref.curation.report import build_report

    report = build_report(output=output, world=world, s1=s1, s2=s2, final_rm=rm, results=results,
                          seconds=time.time() - started, step_times=storage.read_json(STEP_LOG["path"]))
    print("\n" + report["markdown"])
    return report


if __name__ == "__main__":
    main()
