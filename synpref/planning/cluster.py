"""The node kinds a plan runs on, from a cluster file or given by hand.

A Ray autoscaler YAML (cluster/aws.yaml, cluster/gcp.yaml) lists `available_node_types`, each with
`resources` (CPU, GPU) and `max_workers`; a KubeRay manifest (RayCluster, RayJob, RayService) lists
`workerGroupSpecs`, each with its container's cpu / nvidia.com/gpu limits (or rayStartParams num-cpus /
num-gpus, which win) and `maxReplicas`. A plan assumes the autoscaler grows every kind to its maximum
unless `nodes` says how many. Node types without CPUs or GPUs for tasks (the heads here: CPU 0) are
left out, since nothing a stage runs lands on them.

Each kind gets a short alias for the command line: its name without the words ray / worker / group /
node / default (ray.worker.gpu -> gpu, ray_worker_cpu -> cpu, gpu-group -> gpu).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

FILLER_WORDS = {"ray", "worker", "workers", "group", "node", "nodes", "default", "type"}


@dataclass(frozen=True)
class NodeKind:
    name: str                  # as the cluster file names it
    cpus: float                # logical CPUs Ray schedules on one node
    gpus: float
    count: int                 # nodes the plan uses
    max_workers: int | None    # the file's ceiling (None: no file, or none given)

    @property
    def alias(self) -> str:
        words = [w for w in re.split(r"[._\-]", self.name) if w and w.lower() not in FILLER_WORDS]
        return "-".join(words) or self.name

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.alias} = {self.name}: {self.count} x ({self.cpus:g} CPU{gpus})"


def kubernetes_quantity(value) -> float:
    """"28" -> 28, "500m" -> 0.5, 8 -> 8 (Kubernetes CPU and GPU quantities)."""
    text = str(value).strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _autoscaler_kinds(doc: dict) -> list[NodeKind]:
    kinds = []
    for name, spec in (doc.get("available_node_types") or {}).items():
        resources = spec.get("resources") or {}
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if not cpus and not gpus:
            continue
        is_head = name == doc.get("head_node_type")
        ceiling = 1 if is_head else int(spec.get("max_workers", doc.get("max_workers", 0)))
        kinds.append(NodeKind(name, cpus, gpus, count=ceiling, max_workers=ceiling))
    return kinds


def _kuberay_kinds(doc: dict) -> list[NodeKind]:
    spec = doc.get("spec") or {}
    cluster = spec.get("rayClusterSpec") or spec.get("rayClusterConfig") or spec
    kinds = []
    for group in cluster.get("workerGroupSpecs") or []:
        container = group["template"]["spec"]["containers"][0]
        resources = container.get("resources") or {}
        limits = resources.get("limits") or resources.get("requests") or {}
        params = group.get("rayStartParams") or {}
        cpus = kubernetes_quantity(params.get("num-cpus", limits.get("cpu", 0)))
        gpus = kubernetes_quantity(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
        if not cpus and not gpus:
            continue
        ceiling = int(group.get("maxReplicas", group.get("replicas", 0)))
        kinds.append(NodeKind(group["groupName"], cpus, gpus, count=ceiling, max_workers=ceiling))
    return kinds


def read_cluster(path: str | Path) -> list[NodeKind]:
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a cluster file (a YAML mapping)")
    if "available_node_types" in doc:
        kinds = _autoscaler_kinds(doc)
    elif doc.get("kind") in ("RayCluster", "RayJob", "RayService"):
        kinds = _kuberay_kinds(doc)
    else:
        raise ValueError(f"{path}: neither a Ray autoscaler YAML (available_node_types) nor a KubeRay manifest")
    if not kinds:
        raise ValueError(f"{path}: no node type offers CPUs or GPUs to tasks (resources: CPU / GPU)")
    return kinds


def find_kind(kinds: list[NodeKind], key: str) -> NodeKind | None:
    """The kind named `key` (its full name or its alias)."""
    return next((k for k in kinds if key in (k.name, k.alias)), None)


def with_nodes(kinds: list[NodeKind], nodes: dict) -> list[NodeKind]:
    """`nodes` over the file's kinds: {kind: count} sets how many the plan uses; {kind: {count, cpus,
    gpus}} changes a kind or adds one the file lacks (or defines every kind, without a file)."""
    kinds = list(kinds)
    for key, value in (nodes or {}).items():
        known = find_kind(kinds, key)
        if isinstance(value, dict):
            base = known or NodeKind(key, 0.0, 0.0, count=1, max_workers=None)
            changed = replace(base, cpus=float(value.get("cpus", base.cpus)), gpus=float(value.get("gpus", base.gpus)),
                              count=int(value.get("count", base.count)))
        elif known is None:
            raise ValueError(f"nodes.{key}: no node kind of that name or alias in "
                             f"{[k.alias for k in kinds]}; give {{count, cpus, gpus}} to add one")
        else:
            changed = replace(known, count=int(value))
        kinds = [changed if k is known else k for k in kinds] if known else kinds + [changed]
    return kinds
