"""Tiny random reward models and language models for fast tests and benches: a Llama with SmolLM2's
real tokenizer and chat template, so they work offline and format text as the real models do."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from synpref.rm.builtin import SMOLLM2
from synpref.rm.cache import finish_tree, install_dir
from synpref.rm.weights import resolve_model


def build_tiny_model(
    path: str | os.PathLike,
    kind: str = "causal_lm",
    vocab_size: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
) -> str:
    """Write a tiny random Llama (hidden 64, 2 layers, 1 head of 64, MLP 128) to ``path``.

    One head of 64: vLLM's CPU attention supports head sizes from 32 up, not 16.

    ``kind`` is ``"causal_lm"`` (LlamaForCausalLM) or ``"seq_cls"`` (LlamaForSequenceClassification,
    num_labels=1, a reward-model shape). The tokenizer is SmolLM2's (with its chat template), so
    it works offline; ``vocab_size`` defaults to ``len(tokenizer)`` and may only be larger.
    The same ``seed`` gives the same weights. Returns the folder path.
    """
    import torch
    from transformers import (
        AutoTokenizer,
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
    )

    if kind not in ("causal_lm", "seq_cls"):
        raise ValueError(f"kind must be 'causal_lm' or 'seq_cls', got {kind!r}")

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(SMOLLM2, cache_dir=cache_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_tok = len(tokenizer)
    if vocab_size is None:
        vocab_size = n_tok
    if vocab_size < n_tok:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the tokenizer's {n_tok} tokens")

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,  # the 49k x 64 embedding dominates the size; store it once
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    if kind == "seq_cls":
        config.num_labels = 1
        cls = LlamaForSequenceClassification
    else:
        cls = LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config).to(torch.float32).eval()

    out = Path(os.fspath(path)).expanduser().absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").exists())):
        raise FileExistsError(f"{out} exists and is not an (empty or model) folder; refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if kind == "causal_lm":
            GenerationConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            ).save_pretrained(str(tmp))
        finish_tree(tmp)
        install_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(out)
