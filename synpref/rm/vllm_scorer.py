"""Reward-model inference through a vLLM async engine in pooling mode (the replica's `backend: vllm`).

Token ids in, one reward per sequence out, like synpref.rm.scorer.RewardScorer.score_ids: the
ingress formats (synpref.rm.format) and tokenizes, so the engine gets `{"prompt_token_ids": ids}` and
needs no tokenizer of its own. Each sequence is its own engine request, all submitted at once; vLLM's
scheduler batches them with whatever else is in flight (continuous batching). The rewards are the
classifier's raw logits (`use_activation=False`; vLLM's default would apply a sigmoid to a one-label
head), read at the last token (vLLM's LAST pooling), as transformers gives them.

On a CPU, vLLM reads its settings from environment variables, set here in the replica's own process
before the engine starts (`cpu_environment`); its engine core runs in a child process that inherits them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid



def cpu_cores_string() -> str:
    """The cores this process may run on, as vLLM's VLLM_CPU_OMP_THREADS_BIND spells them ("0-1", "0,2,5")."""
    cores = sorted(os.sched_getaffinity(0))
    if cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}"
    return ",".join(map(str, cores))


def cpu_environment(options: dict) -> dict[str, str]:
    """vLLM-CPU's environment variables from the config's `vllm:` section.

    KV-cache space in GiB (else vLLM sizes it from gpu_memory_utilization x RAM), the cores its OpenMP
    threads bind to (null = the environment's VLLM_CPU_OMP_THREADS_BIND if set, else every core this
    process may use: vLLM's own `auto` used one of two cores here), and its compile caches (null = the
    environment's VLLM_CACHE_ROOT / TORCHINDUCTOR_CACHE_DIR, or vLLM's default ~/.cache/vllm)."""
    bind = options.get("cpu_omp_threads_bind") or os.environ.get("VLLM_CPU_OMP_THREADS_BIND") or cpu_cores_string()
    env = {"VLLM_CPU_KVCACHE_SPACE": str(int(options.get("cpu_kvcache_space_gib") or 1)),
           "VLLM_CPU_OMP_THREADS_BIND": str(bind)}
    if options.get("cache_dir"):
        cache = os.path.abspath(os.path.expanduser(str(options["cache_dir"])))
        env.update(VLLM_CACHE_ROOT=cache, TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"))
    return env


def engine_args(model_path: str, *, device: str, dtype: str, max_length: int, options: dict) -> dict:
    """AsyncEngineArgs keywords for a one-label sequence classifier served as a pooling model."""
    if dtype == "auto":  # as synpref.rm.scorer.torch_dtype: no fast bf16 on CPUs without AMX
        dtype = "float32" if device == "cpu" else "bfloat16"
    kwargs = {
        "model": model_path,
        "runner": "pooling",
        "dtype": dtype,
        "skip_tokenizer_init": True,  # the ingress tokenizes; the engine only sees token ids
        "enforce_eager": bool(options.get("enforce_eager", True)),
        "max_model_len": int(options.get("max_model_len") or max_length),
        "gpu_memory_utilization": float(options.get("gpu_memory_utilization") or 0.9),
        "tensor_parallel_size": int(options.get("tensor_parallel_size") or 1),
        "disable_log_stats": True,
        "seed": 0,
    }
    if kwargs["tensor_parallel_size"] > 1:  # worker processes on the GPUs Ray gave this replica
        kwargs["distributed_executor_backend"] = "mp"
    for key in ("max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching"):
        if options.get(key) is not None:
            kwargs[key] = options[key]
    return kwargs


class VllmScorer:
    """A vLLM AsyncLLM engine (pooling runner, classify task) scoring token-id sequences."""

    def __init__(self, model_path: str, *, device: str = "cpu", dtype: str = "auto", max_length: int = 4096,
                 options: dict | None = None):
        options = dict(options or {})
        if device == "cpu":
            os.environ.update(cpu_environment(options))
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.inputs.engine import tokens_input
        from vllm.pooling_params import PoolingParams
        from vllm.v1.engine.async_llm import AsyncLLM

        self.model_path = model_path
        self.engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(**engine_args(model_path, device=device, dtype=dtype, max_length=max_length,
                                          options=options)))
        # raw logits (vLLM's default for one label is a sigmoid); vLLM verifies and copies it per request
        self.params = PoolingParams(task="classify", use_activation=False)
        self._tokens_input = tokens_input  # {"type": "token", "prompt_token_ids": ids}: no renderer pass
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    async def _one(self, ids: list[int]) -> float:
        final = None
        async for output in self.engine.encode(self._tokens_input(ids), self.params,
                                               request_id=f"rm-{self._prefix}-{next(self._ids)}"):
            final = output
        if final is None or final.error is not None:
            raise RuntimeError(f"vLLM returned no reward: {getattr(final, 'error', None)}")
        return float(final.outputs.data[0])

    async def score_ids(self, ids: list[list[int]]) -> list[float]:
        """One reward per token-id sequence, in input order."""
        if any(len(x) == 0 for x in ids):
            raise ValueError("cannot score an empty token sequence")
        return list(await asyncio.gather(*(self._one(x) for x in ids)))

    def shutdown(self) -> None:
        self.engine.shutdown()
