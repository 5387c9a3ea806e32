"""Shared by the serving and evaluation tests under tests/jobs/: a real Serve app on a local Ray, and
reference rewards computed with plain transformers (no synpref.serving code), to compare against."""

from __future__ import annotations

import contextlib
import os
import socket

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a primary colour."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a fact about owls."}],
]
RESPONSES = ["4.", "Red.", "Owls can rotate their heads about 270 degrees, which helps them track prey."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(args: dict, *, token_env: str | None = None, token: str | None = None, num_cpus: int = 4):
    """Start Ray (num_cpus logical CPUs), Serve on a free loopback port and jobs/serve_rm.py's app
    from `args` (merged over conf/serve_rm.yaml); yield the base URL; shut both down after."""
    import ray
    from ray import serve

    from synpref.serving.app import build_app
    from synpref.serving.settings import load_settings

    if token_env:
        args = {**args, "auth": {"token_env": token_env}}
        os.environ[token_env] = token or ""
    ray.init(num_cpus=num_cpus, include_dashboard=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(load_settings(args)), name="synpref-rm", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        if token_env:
            os.environ.pop(token_env, None)


class ReferenceRM:
    """A reward model scored the plain way: transformers' *ForSequenceClassification, one unpadded
    sequence per forward, token ids from synpref.rm.format (the format training uses)."""

    def __init__(self, path: str):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()

    def ids(self, text: str, max_length: int = 10**6) -> list[int]:
        from synpref.rm.format import encode

        return encode(self.tokenizer, [text], max_length)[0][0]

    def text(self, conversation: list[dict], response: str) -> str:
        from synpref.rm.format import rm_text

        return rm_text(self.tokenizer, conversation, response)

    def reward_ids(self, ids: list[int]) -> float:
        with self.torch.inference_mode():
            return float(self.model(input_ids=self.torch.tensor([ids])).logits[0, 0])

    def reward(self, text: str) -> float:
        return self.reward_ids(self.ids(text))
