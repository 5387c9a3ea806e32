"""Bind the Serve application from the serving config: the FastAPI ingress and, with layout
`separate`, one RewardModel deployment per model behind it; with layout `colocated` the ingress
holds the models itself (one deployment, no hop between HTTP and the engine).

Backpressure: an HTTP request over the ingress's `max_ongoing_requests` waits in the proxy's
queue; past `max_queued_requests` the proxy answers 503. The same two limits on each model
deployment bound the chunks waiting at the ingress, whose overflow the ingress answers with 503.
"""

from __future__ import annotations

import re

from omegaconf import OmegaConf
from ray.serve import Application

from synpref.serving.ingress import RewardModelIngress
from synpref.serving.replica import RewardModel
from synpref.serving.settings import auth_token, config_problems, model_specs


def deployment_options(section) -> dict:
    """Serve options of one deployment from its config section (replica or ingress)."""
    section = OmegaConf.to_container(section, resolve=True)
    options = {
        "max_ongoing_requests": section["max_ongoing_requests"],
        "max_queued_requests": section["max_queued_requests"],
        "ray_actor_options": {"num_cpus": section["num_cpus"], "num_gpus": section.get("num_gpus") or 0},
    }
    if section.get("autoscaling_config"):
        options["autoscaling_config"] = section["autoscaling_config"]
    else:
        options["num_replicas"] = section["num_replicas"]
    return options


def deployment_name(index: int, served_name: str) -> str:
    """A readable, unique deployment name for a served model (served names may be paths)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", served_name).strip("_.")[-48:]
    return f"RewardModel-{index}-{slug}"


def build_app(cfg) -> Application:
    problems = config_problems(cfg)
    if problems:
        raise ValueError("serving config: " + "; ".join(problems))
    specs = model_specs(cfg)
    batching = cfg.batching
    vllm_options = OmegaConf.to_container(cfg.vllm, resolve=True) if cfg.backend == "vllm" else None
    host_options = {name: dict(backend=cfg.backend, device=cfg.device, dtype=cfg.dtype, max_length=spec["max_length"],
                               max_batch_size=batching.max_batch_size, batch_wait_timeout_s=batching.batch_wait_timeout_s,
                               max_tokens_per_forward=batching.max_tokens_per_forward,
                               torch_threads=cfg.torch_threads, vllm=vllm_options)
                    for name, spec in specs.items()}
    common = dict(auth_token=auth_token(cfg), max_items_per_request=cfg.max_items_per_request,
                  max_request_bytes=cfg.max_request_bytes, chunk_size=batching.max_batch_size,
                  default_model=cfg.default_model)
    if cfg.layout == "colocated":  # the ingress replica holds every model: it needs their resources
        ingress = deployment_options(cfg.ingress)
        ingress["ray_actor_options"] = deployment_options(cfg.replica)["ray_actor_options"]
        return RewardModelIngress.options(**ingress).bind(specs, None, hosts=host_options, **common)
    replicas = {
        name: RewardModel.options(name=deployment_name(i, name), **deployment_options(cfg.replica)).bind(
            spec["path"], **host_options[name])
        for i, (name, spec) in enumerate(specs.items())
    }
    return RewardModelIngress.options(**deployment_options(cfg.ingress)).bind(specs, replicas, **common)
