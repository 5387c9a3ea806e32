"""Tiny random models for tests (synpref.demo.tiny_models): shapes, loading, seeds, safe rebuilds."""

from pathlib import Path

import pytest
import torch

from synpref.demo.tiny_models import build_tiny_model
from synpref.rm.weights import resolve_model


@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, smollm2_dir) -> dict[str, str]:
    base = tmp_path_factory.mktemp("tiny")
    return {kind: build_tiny_model(base / kind, kind=kind) for kind in ("causal_lm", "seq_cls")}


def test_tiny_causal_lm_loads_and_generates(tiny_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = tiny_dirs["causal_lm"]
    size = sum(p.stat().st_size for p in Path(d).iterdir())
    assert size < 25e6
    tok = AutoTokenizer.from_pretrained(d)
    assert tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(d)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (
        64, 2, 1, 128,
    )
    assert cfg.vocab_size == len(tok)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 4


def test_tiny_seq_cls_forward_shape(tiny_dirs):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    d = tiny_dirs["seq_cls"]
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForSequenceClassification.from_pretrained(d).eval()
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tok.pad_token_id is not None
    batch = tok(["short", "a somewhat longer text to force padding"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 1)
    assert torch.isfinite(logits).all()


def test_tiny_model_seed_and_args(tmp_path, smollm2_dir):
    from safetensors.torch import load_file

    a = load_file(Path(build_tiny_model(tmp_path / "a", kind="seq_cls", seed=3), "model.safetensors"))
    b = load_file(Path(build_tiny_model(tmp_path / "b", kind="seq_cls", seed=3), "model.safetensors"))
    c = load_file(Path(build_tiny_model(tmp_path / "c", kind="seq_cls", seed=4), "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)

    # rebuilding over an existing model folder replaces it
    build_tiny_model(tmp_path / "a", kind="causal_lm", seed=3)
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".old-*"))

    with pytest.raises(ValueError):
        build_tiny_model(tmp_path / "d", kind="reward")
    with pytest.raises(ValueError):
        build_tiny_model(tmp_path / "e", vocab_size=100)
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "keep.txt").write_text("important")
    with pytest.raises(FileExistsError):
        build_tiny_model(tmp_path / "notmodel")
    assert (tmp_path / "notmodel" / "keep.txt").read_text() == "important"
