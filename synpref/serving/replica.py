"""One reward model on one device, scoring token ids in dynamic batches, and the deployment around it.

`ModelHost` holds the model; two backends (the config's `backend`):
- transformers (synpref.rm.scorer): `@serve.batch` gathers the chunks of concurrent requests into one
  batch counted in sequences (`batch_size_fn`), and the forward runs in a worker thread so the event
  loop keeps accepting chunks for the next batch meanwhile.
- vllm (synpref.rm.vllm_scorer): every sequence goes to the vLLM engine as it arrives; the engine's
  scheduler batches whatever is in flight (continuous batching), so a second batcher in front of it
  would only add its wait.
The ingress (synpref.serving.ingress) either calls a `RewardModel` deployment per model (layout
`separate`: models scale apart from the HTTP ingress) or holds the hosts itself (layout `colocated`:
no hop between the HTTP ingress and the engine, the faster layout for one model per replica).
"""

from __future__ import annotations

import asyncio

from ray import serve

from synpref.rm.weights import resolve_model


def sequences_in(chunks: list[list[list[int]]]) -> int:
    """The size of a batch of chunks for @serve.batch: how many sequences they hold."""
    return sum(len(chunk) for chunk in chunks)


class ModelHost:
    def __init__(self, model: str, *, backend: str = "transformers", device: str = "cpu", dtype: str = "auto",
                 max_length: int = 4096, max_batch_size: int = 32, batch_wait_timeout_s: float = 0.01,
                 max_tokens_per_forward: int = 16384, torch_threads: int | None = None,
                 vllm: dict | None = None):
        # resolved here, on the replica's node: built-ins convert and hub ids download where they run
        path = resolve_model(model)
        self.engine = None
        if backend == "vllm":
            from synpref.rm.vllm_scorer import VllmScorer

            self.engine = VllmScorer(path, device=device, dtype=dtype, max_length=max_length, options=vllm)
            return
        from synpref.rm.scorer import RewardScorer

        self.scorer = RewardScorer(path, device=device, dtype=dtype, max_tokens_per_forward=max_tokens_per_forward,
                                   max_rows_per_forward=max_batch_size, torch_threads=torch_threads)
        self.score_batch.set_max_batch_size(max_batch_size)
        self.score_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def score(self, chunk: list[list[int]]) -> list[float]:
        """One reward per token-id sequence of the chunk, in order."""
        if self.engine is not None:
            return await self.engine.score_ids(chunk)
        return await self.score_batch(chunk)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01, batch_size_fn=sequences_in)
    async def score_batch(self, chunks: list[list[list[int]]]) -> list[list[float]]:
        flat = [ids for chunk in chunks for ids in chunk]
        rewards = await asyncio.to_thread(self.scorer.score_ids, flat)
        out, start = [], 0
        for chunk in chunks:
            out.append(rewards[start:start + len(chunk)])
            start += len(chunk)
        return out

    def shutdown(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()


@serve.deployment
class RewardModel:
    """The `separate` layout's model deployment: a ModelHost the ingress calls through a handle."""

    def __init__(self, model: str, **options):
        self.host = ModelHost(model, **options)

    async def score(self, chunk: list[list[int]]) -> list[float]:
        return await self.host.score(chunk)

    def __del__(self):
        # Serve calls this as it stops the replica: stop the engine core process with it
        if getattr(self, "host", None) is not None:
            self.host.shutdown()
