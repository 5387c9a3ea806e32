"""The serving config (conf/serve_rm.yaml): loading it outside Hydra, checking it, and the models it names.

jobs/serve_rm.py gets its config from Hydra; `serve run jobs.serve_rm:app key=value`, `serve deploy`
and KubeRay call the application builder with an `args` dict instead, which `load_settings` merges
over the same YAML, so every way of starting the server reads one file.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf" / "serve_rm.yaml"  # in a checkout / editable install


def load_settings(args: dict | None = None, conf: str | Path = CONF) -> DictConfig:
    """conf/serve_rm.yaml (jobs/serve_rm.py passes the copy next to it) with `args` merged over it.

    args: Serve's application arguments. String values come from the command line
    (`serve run ... batching.max_batch_size=16`) and are parsed as YAML like Hydra overrides;
    other values (from a serve config file's `args:` block) are taken as they are.
    """
    cfg = OmegaConf.load(conf)
    cfg.pop("hydra", None)
    args = dict(args or {})
    from_cli = [f"{key}={value}" for key, value in args.items() if isinstance(value, str)]
    structured = {key: value for key, value in args.items() if not isinstance(value, str)}
    merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(from_cli), OmegaConf.create(structured))
    OmegaConf.resolve(merged)
    return merged


def model_specs(cfg) -> dict[str, dict]:
    """served name -> {"path", "max_length", "aliases"} for every model the config names."""
    specs: dict[str, dict] = {}
    if cfg.model:
        specs[str(cfg.model_name or cfg.model)] = {"path": str(cfg.model), "max_length": int(cfg.max_length),
                                                   "aliases": [str(a) for a in cfg.get("aliases") or []]}
    for entry in cfg.models or []:
        name = str(entry.get("name") or entry["path"])
        specs[name] = {"path": str(entry["path"]), "max_length": int(entry.get("max_length") or cfg.max_length),
                       "aliases": [str(a) for a in entry.get("aliases") or []]}
    return specs


def config_problems(cfg) -> list[str]:
    """Every problem with the application's config, each naming the key and the fix (empty when fine).

    The http section is jobs/serve_rm.py's business (serve run / KubeRay bind the proxy themselves)."""
    problems = []
    names = [str(m.get("name") or m.get("path")) for m in (cfg.models or [])]
    if cfg.model and cfg.models:
        problems.append("set either model=<path> (one model) or models=[{name, path}, ...], not both")
    elif not cfg.model and not cfg.models:
        problems.append("no model to serve: add model=<folder, hub id or built-in> or models=[{name: rm, path: ...}]")
    if any(not m.get("path") for m in (cfg.models or [])):
        problems.append("every entry of models needs a path: models=[{name: rm, path: /ckpt/hf}]")
    if len(set(names)) != len(names):
        problems.append(f"models has duplicate names {names}: give each a distinct name")
    try:
        specs = model_specs(cfg)
    except KeyError:  # an entry without a path: reported above
        specs = {}
    every_name = [n for name, spec in specs.items() for n in [name, *spec["aliases"]]]
    if len(set(every_name)) != len(every_name):
        problems.append(f"model names and aliases {every_name} must all be distinct")
    if cfg.default_model is not None and cfg.default_model not in specs:
        problems.append(f"default_model={cfg.default_model!r} is not a served name: one of {list(specs)}")
    if cfg.max_request_bytes < 1024:
        problems.append("max_request_bytes must be at least 1024")
    if cfg.device not in ("cpu", "cuda"):
        problems.append(f"device={cfg.device!r}: choose cpu or cuda")
    if cfg.dtype not in ("auto", "float32", "bfloat16", "float16"):
        problems.append(f"dtype={cfg.dtype!r}: choose auto, float32, bfloat16 or float16")
    if cfg.device == "cuda" and not cfg.replica.num_gpus:
        problems.append("device=cuda needs replica.num_gpus=1 (or a fraction) so replicas land on GPU nodes")
    if cfg.device == "cpu" and cfg.replica.num_gpus:
        problems.append("replica.num_gpus>0 with device=cpu reserves GPUs for nothing: set device=cuda or num_gpus=0")
    if cfg.max_length < 1 or cfg.batching.max_batch_size < 1 or cfg.max_items_per_request < 1:
        problems.append("max_length, batching.max_batch_size and max_items_per_request must be at least 1")
    if cfg.batching.max_tokens_per_forward < 1 or cfg.batching.batch_wait_timeout_s < 0:
        problems.append("batching.max_tokens_per_forward must be at least 1 and batching.batch_wait_timeout_s "
                        "at least 0 (a sequence longer than the token budget still runs, alone)")
    if cfg.layout not in ("separate", "colocated"):
        problems.append(f"layout={cfg.layout!r}: choose separate (a model deployment per model) or colocated "
                        "(the ingress holds the models)")
    problems += vllm_problems(cfg)
    for part in ("replica", "ingress"):
        section = cfg[part]
        if section.max_ongoing_requests < 1:
            problems.append(f"{part}.max_ongoing_requests must be at least 1")
        if section.autoscaling_config is None and int(section.num_replicas) < 1:
            problems.append(f"{part}.num_replicas must be at least 1 (or set {part}.autoscaling_config)")
    return problems


def vllm_problems(cfg) -> list[str]:
    """The backend key and, with backend=vllm, the vllm section."""
    if cfg.backend not in ("transformers", "vllm"):
        return [f"backend={cfg.backend!r}: choose transformers or vllm"]
    if cfg.backend != "vllm":
        return []
    v, problems = cfg.vllm, []
    try:
        longest = max(spec["max_length"] for spec in model_specs(cfg).values())
    except (KeyError, ValueError):  # no model, or one without a path: reported above
        longest = None
    if v.max_model_len is not None:
        if int(v.max_model_len) < 1:
            problems.append("vllm.max_model_len must be at least 1 (or null: each model's max_length)")
        elif longest and longest > int(v.max_model_len):
            problems.append(f"vllm.max_model_len={v.max_model_len} is below max_length={longest}: the ingress "
                            "would pass sequences the engine refuses; raise it or set it to null")
    if not 0 < float(v.gpu_memory_utilization) <= 1:
        problems.append(f"vllm.gpu_memory_utilization={v.gpu_memory_utilization}: a fraction in (0, 1]")
    tp = int(v.tensor_parallel_size)
    if tp < 1:
        problems.append("vllm.tensor_parallel_size must be at least 1")
    elif tp > 1 and (cfg.device != "cuda" or float(cfg.replica.num_gpus) != tp):
        problems.append(f"vllm.tensor_parallel_size={tp} needs device=cuda and replica.num_gpus={tp} "
                        "(one GPU per shard, all in the replica); or set vllm.tensor_parallel_size=1")
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        if v[key] is not None and int(v[key]) < 1:
            problems.append(f"vllm.{key} must be at least 1 (or null: vLLM's default)")
    if not isinstance(v.enforce_eager, bool):
        problems.append(f"vllm.enforce_eager={v.enforce_eager!r}: true or false")
    if v.enable_prefix_caching is not None and not isinstance(v.enable_prefix_caching, bool):
        problems.append(f"vllm.enable_prefix_caching={v.enable_prefix_caching!r}: true, false or null")
    if cfg.device == "cpu" and (not isinstance(v.cpu_kvcache_space_gib, int) or v.cpu_kvcache_space_gib < 1):
        problems.append(f"vllm.cpu_kvcache_space_gib={v.cpu_kvcache_space_gib!r}: a whole number of GiB, at least 1 "
                        "(vLLM reads VLLM_CPU_KVCACHE_SPACE as an integer)")
    return problems


def private_address(host: str) -> bool:
    """Loopback or a private network (10/8, 172.16/12, 192.168/16, fc00::/7): where a server without a
    token may listen, for RLHF trainers on the same network that send none."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or (address.is_private and not address.is_unspecified)


def auth_token(cfg) -> str | None:
    """The bearer token from the environment variable auth.token_env; None (no auth) when unset or empty."""
    return os.environ.get(str(cfg.auth.token_env or "")) or None
