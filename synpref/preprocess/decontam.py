"""13-gram decontamination against evaluation benchmarks (DESIGN.md section 1).

The index is the set of word n-grams of every benchmark's first-turn prompt, each n-gram hashed to
64 bits and kept in one sorted numpy array (8 bytes an n-gram; all of RM-Bench, JudgeBench and RMB
make well under 10 MB). Text is lower-cased and split on word characters, so punctuation and spacing
changes do not hide a copied prompt. A prompt shorter than n words has no n-gram and cannot match.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import numpy as np

WORD = re.compile(r"\w+")
BASE = np.uint64(0x100000001B3)  # FNV prime: mixes word hashes into an n-gram hash


@functools.lru_cache(maxsize=1 << 20)
def word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def ngram_hashes(text: str, n: int) -> np.ndarray:
    words = WORD.findall(text.lower())
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    hashes = np.fromiter((word_hash(w) for w in words), dtype=np.uint64, count=len(words))
    powers = BASE ** np.arange(n - 1, -1, -1, dtype=np.uint64)  # wraps mod 2^64, as intended
    windows = np.lib.stride_tricks.sliding_window_view(hashes, n)
    with np.errstate(over="ignore"):
        return (windows * powers).sum(axis=1, dtype=np.uint64)


def first_user_turn(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for message in value:
            if isinstance(message, dict) and message.get("role") in ("user", "human"):
                content = message.get("content")
                return content if isinstance(content, str) else None
    return None


def first_turn_prompt(record: dict) -> str | None:
    """The first user turn of a benchmark record, in the field names the benchmarks use:
    RM-Bench / RewardBench 1 and 2 / PPE `prompt`, JudgeBench `question`, RMB `conversation_input`."""
    for key in ("conversation_input", "prompt", "question", "conversation", "messages", "context"):
        if key in record:
            return first_user_turn(record[key])
    return None


def benchmark_records(path: Path):
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        yield from data if isinstance(data, list) else [data]
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()


def benchmark_prompts(paths) -> list[str]:
    """First-turn prompts of every benchmark file under `paths` (files or folders, searched deep)."""
    prompts = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"decontam.benchmarks: {root} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for file in files:
            # JudgeBench's outputs/ hold judge answers, not benchmark inputs
            inside = file.relative_to(root).parts if file != root else ()
            if file.is_file() and file.suffix in (".json", ".jsonl", ".parquet") and "outputs" not in inside:
                prompts.extend(p for p in map(first_turn_prompt, benchmark_records(file)) if p)
    return prompts


class NgramIndex:
    def __init__(self, hashes: np.ndarray, n: int = 13):
        self.hashes = np.unique(np.asarray(hashes, dtype=np.uint64))
        self.n = n

    @classmethod
    def from_prompts(cls, prompts, n: int = 13) -> "NgramIndex":
        parts = [ngram_hashes(p, n) for p in prompts]
        return cls(np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64), n)

    @classmethod
    def from_benchmarks(cls, paths, n: int = 13) -> "NgramIndex":
        return cls.from_prompts(benchmark_prompts(paths), n)

    def __len__(self) -> int:
        return len(self.hashes)

    def overlaps(self, texts) -> bool:
        if not len(self.hashes):
            return False
        for text in texts:
            grams = ngram_hashes(text, self.n)
            if len(grams):
                pos = np.searchsorted(self.hashes, grams)
                pos[pos == len(self.hashes)] = 0
                if np.any(self.hashes[pos] == grams):
                    return True
        return False
