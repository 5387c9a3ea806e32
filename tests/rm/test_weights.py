"""Tests for synpref.rm.weights and synpref.rm.builtin: built-in model resolution, local paths, hub ids.

The SmolLM2 conversion (~25 s) happens once into the default cache ($SYNPREF_CACHE or
~/.cache/synpref), so repeated runs are fast. Lock / atomicity tests use a fake converter in a
temporary cache.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import torch

from synpref.rm import builtin
from synpref.rm.weights import BUILTIN_MODELS, ModelResolutionError, default_cache_dir, resolve_model

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"


@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    return resolve_model(SMOLLM2)


# ---------------------------------------------------------------------------------------------
# built-ins
# ---------------------------------------------------------------------------------------------


def test_builtin_registry_documents_names():
    assert set(BUILTIN_MODELS) == {SMOLLM2, MINILM}
    for info in BUILTIN_MODELS.values():
        assert info["what"] and info["source"]


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNPREF_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("SYNPREF_CACHE")
    assert default_cache_dir() == os.path.expanduser("~/.cache/synpref")


def test_smollm2_resolves_to_plain_float32_folder(smollm2_dir):
    from transformers import AutoConfig

    d = Path(smollm2_dir)
    assert d.is_dir() and d.name == SMOLLM2
    assert Path(smollm2_dir).parent == Path(default_cache_dir())
    assert (d / "model.safetensors").is_file()
    assert not list(d.parent.glob(f".tmp-{SMOLLM2}-*"))
    cfg = AutoConfig.from_pretrained(smollm2_dir)
    assert cfg.model_type == "llama"
    assert getattr(cfg, "quantization_config", None) is None
    assert cfg.vocab_size == 49152 and cfg.hidden_size == 576


def test_smollm2_tokenizer_and_model_load(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.chat_template
    text = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user" in text and text.endswith("<|im_start|>assistant\n")
    assert tok.pad_token is not None

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert model.dtype == torch.float32
    assert getattr(model, "hf_quantizer", None) is None
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], 49152)
    assert torch.isfinite(logits).all()


def test_smollm2_second_resolve_does_not_reconvert(smollm2_dir):
    d = Path(smollm2_dir)
    before = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    t0 = time.perf_counter()
    assert resolve_model(SMOLLM2) == smollm2_dir
    assert resolve_model(SMOLLM2.upper()) == smollm2_dir
    assert time.perf_counter() - t0 < 2.0
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir()} == before


def test_minilm_loads_and_embeds_384():
    from transformers import AutoModel, AutoTokenizer

    d = resolve_model(MINILM)
    assert Path(d, "config.json").is_file()
    assert "site-packages" in d or "dist-packages" in d  # used in place, not copied
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d).eval()
    batch = tok(["a cat sat on the mat", "reward models"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = (hidden * mask).sum(1) / mask.sum(1)
    assert emb.shape == (2, 384)


# ---------------------------------------------------------------------------------------------
# conversion cache: lock, marker, atomic rename (fake converter, temp cache)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_convert(monkeypatch):
    calls = []

    def convert(gguf, out):
        calls.append(out)
        time.sleep(0.2)
        Path(out, "config.json").write_text("{}")

    monkeypatch.setattr(builtin, "_convert_smollm2", convert)
    return calls


def test_concurrent_resolves_convert_once(tmp_path, fake_convert):
    results, errors = [], []

    def worker():
        try:
            results.append(resolve_model(SMOLLM2, cache_dir=str(tmp_path)))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [str(tmp_path / SMOLLM2)] * 4
    assert len(fake_convert) == 1
    assert (tmp_path / SMOLLM2 / ".synpref_complete.json").is_file()
    assert not list(tmp_path.glob(".tmp-*"))


def test_crashed_conversion_leaves_nothing_and_is_redone(tmp_path, monkeypatch):
    def boom(gguf, out):
        Path(out, "config.json").write_text("{}")
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(builtin, "_convert_smollm2", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        resolve_model(SMOLLM2, cache_dir=str(tmp_path))
    assert not (tmp_path / SMOLLM2).exists()
    assert not list(tmp_path.glob(".tmp-*"))

    # A folder without the marker (e.g. copied in half-way) and a stale temp dir from a killed
    # process are both replaced / cleaned on the next resolve.
    (tmp_path / SMOLLM2).mkdir()
    (tmp_path / SMOLLM2 / "config.json").write_text("{}")
    (tmp_path / f".tmp-{SMOLLM2}-dead").mkdir()
    calls = []
    monkeypatch.setattr(builtin, "_convert_smollm2", lambda g, o: calls.append(o) or Path(o, "x").touch())
    out = resolve_model(SMOLLM2, cache_dir=str(tmp_path))
    assert calls and Path(out, "x").is_file() and Path(out, ".synpref_complete.json").is_file()
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob(".old-*"))


# ---------------------------------------------------------------------------------------------
# local paths and hub ids
# ---------------------------------------------------------------------------------------------


def test_local_path_passes_through(tmp_path):
    from synpref.demo.tiny_models import build_tiny_model

    d = build_tiny_model(tmp_path / "tiny", kind="causal_lm")
    assert resolve_model(d) == d
    assert resolve_model(Path(d)) == d


def test_bad_local_paths_raise_clear_errors(tmp_path):
    missing = tmp_path / "nope" / "model"
    with pytest.raises(ModelResolutionError, match="does not exist") as e:
        resolve_model(str(missing))
    assert str(missing) in str(e.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelResolutionError, match="no config.json") as e:
        resolve_model(str(empty))
    assert str(empty) in str(e.value)

    f = tmp_path / "file.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelResolutionError, match="not a folder"):
        resolve_model(str(f))

    with pytest.raises(ModelResolutionError):
        resolve_model("  ")


def test_unknown_hub_id_offline_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "synpref-test-org/no-such-model-4242"
    with pytest.raises(ModelResolutionError) as e:
        resolve_model(repo, cache_dir=str(tmp_path))
    msg = str(e.value)
    assert repo in msg and "offline" in msg
    assert "local model folder" in msg and SMOLLM2 in msg


def test_hub_connection_error_raises_clear_error(tmp_path, monkeypatch):
    import httpx
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    seen = {}

    def no_network(repo_id, **kw):
        seen.update(kw, repo_id=repo_id)
        raise httpx.ConnectError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    with pytest.raises(ModelResolutionError, match="could not be reached") as e:
        resolve_model("some-org/some-model", cache_dir=str(tmp_path))
    assert "some-org/some-model" in str(e.value) and MINILM in str(e.value)
    assert seen["repo_id"] == "some-org/some-model"
    assert seen["cache_dir"] == str(tmp_path / "hub")


def test_hub_id_uses_snapshot_download(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    snap = tmp_path / "snap"
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(snap))
    assert resolve_model("Skywork/Skywork-Reward-V2-Llama-3.1-8B", cache_dir=str(tmp_path)) == str(snap)
