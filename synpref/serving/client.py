"""Score (conversation, response) items through a synpref server's POST /v1/reward.

Requests go out `concurrency` at a time (so the server's @serve.batch has company to batch);
503 (overloaded) and connection failures are retried with exponential backoff a bounded number
of times; any other 4xx is the caller's fault and raised with the server's reason.
"""

from __future__ import annotations

import asyncio
import random

import httpx

RETRY_STATUSES = (502, 503, 504)


class ServerError(RuntimeError):
    """The server refused a request (4xx) or kept failing after the retries."""


class RewardClient:
    def __init__(self, url: str, *, model: str | None = None, token: str | None = None, concurrency: int = 4,
                 timeout_s: float = 600.0, retries: int = 8, truncate: bool = True):
        self.url = url.rstrip("/")
        self.model = model
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.truncate = truncate
        self.retried = 0  # requests sent again after a 503 / connection failure (reported by jobs)

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict) -> dict:
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(path, json=body)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return response.json()
                failure = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code not in RETRY_STATUSES:
                    raise ServerError(f"POST {self.url}{path} refused: {failure}")
            if attempt == self.retries:
                break
            self.retried += 1
            await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))
        raise ServerError(f"POST {self.url}{path} failed {self.retries + 1} times; last: {failure}")

    async def score_batches(self, batches: list[list[dict]], on_done=None) -> list[dict]:
        """POST each batch of {"conversation", "response"} items to /v1/reward.

        Returns the server's answer per batch ("scores", "truncated", ...), in batch order;
        on_done(batch_index) is called as each batch completes (a progress bar's hook)."""
        limit = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=self.timeout_s,
                                     limits=limits) as client:
            async def one(index: int, items: list[dict]) -> dict:
                async with limit:
                    body = {"items": items, "truncate": self.truncate}
                    if self.model is not None:
                        body["model"] = self.model
                    answer = await self._post(client, "/v1/reward", body)
                if on_done:
                    on_done(index)
                return answer

            return await asyncio.gather(*(one(i, batch) for i, batch in enumerate(batches)))

    def health(self) -> dict:
        response = httpx.get(f"{self.url}/health", headers=self.headers, timeout=30)
        if response.status_code != 200:
            raise ServerError(f"GET {self.url}/health: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()
