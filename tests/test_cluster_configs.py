"""Static checks of the cluster configs under cluster/.

Fast: no network, no Ray start, no cloud SDKs. They check that the Ray
autoscaler YAMLs (cluster/aws.yaml, cluster/gcp.yaml) and the KubeRay
manifests (cluster/kuberay/*.yaml) are well-formed, have the CPU head + CPU
pool + GPU pool shape, and name images that match the Ray and Python actually
installed here (so bumping Ray without bumping the configs fails).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"

AUTOSCALER_FILES = {"aws.yaml": ("aws", "us-west-2"), "gcp.yaml": ("gcp", "us-central1")}
KUBERAY_FILES = {
    "raycluster.yaml": "RayCluster",
    "rayjob.yaml": "RayJob",
    "rayservice.yaml": "RayService",
}

RAY_VERSION = ray.__version__
PY_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
GPU = "nvidia.com/gpu"


def _all_yaml_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.suffix in {".yaml", ".yml"})


def _load(path: Path) -> dict:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, f"{path}: expected one YAML document, got {len(docs)}"
    assert isinstance(docs[0], dict), f"{path}: top level is not a mapping"
    return docs[0]


def _header(path: Path) -> str:
    """The leading comment block, '#' stripped, continuation lines joined."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return re.sub(r"\s*\\\s*\n\s*", " ", "\n".join(lines))


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


# --------------------------------------------------------------------------- all files


def test_expected_files_exist():
    for name in AUTOSCALER_FILES:
        assert (CLUSTER / name).is_file(), name
    for name in KUBERAY_FILES:
        assert (KUBERAY / name).is_file(), name
    assert (CLUSTER / "README.md").is_file()


@pytest.mark.parametrize("path", _all_yaml_files(), ids=_rel)
def test_every_yaml_parses_and_has_a_header(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs)
    header = _header(path)
    assert len(header.splitlines()) >= 3, f"{path}: needs a top comment block saying how to use it"


# --------------------------------------------------------------------------- images


def _node_image(cfg: dict, node_type: str) -> str:
    """The image the autoscaler runs for one node type (per-type override first)."""
    docker = cfg.get("docker") or {}
    if node_type == cfg["head_node_type"]:
        return docker.get("head_image") or docker["image"]
    per_type = cfg["available_node_types"][node_type].get("docker") or {}
    return per_type.get("worker_image") or docker.get("worker_image") or docker["image"]


def _autoscaler_images(cfg: dict) -> list[str]:
    docker = cfg.get("docker") or {}
    images = [docker[k] for k in ("image", "head_image", "worker_image") if docker.get(k)]
    for spec in cfg["available_node_types"].values():
        if (spec.get("docker") or {}).get("worker_image"):
            images.append(spec["docker"]["worker_image"])
    return images


def _containers(obj) -> list[dict]:
    """Every container (and initContainer) in any pod template, found recursively."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(c for c in value if isinstance(c, dict))
            else:
                found.extend(_containers(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(_containers(item))
    return found


def _images_of(path: Path) -> list[str]:
    doc = _load(path)
    if "available_node_types" in doc:
        return _autoscaler_images(doc)
    return [c["image"] for c in _containers(doc) if "image" in c]


def _tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    assert ":" in name, f"image {image!r} has no tag (pin it)"
    return name.rsplit(":", 1)[1]


def _is_gpu_image(image: str) -> bool:
    parts = _tag(image).split("-")
    return "gpu" in parts or any(re.fullmatch(r"cu\d+", p) for p in parts)


def test_tag_helpers():
    assert _tag("rayproject/ray:2.60.0-py311-gpu") == "2.60.0-py311-gpu"
    assert _tag("localhost:5000/ray:2.60.0-py311") == "2.60.0-py311"
    assert _is_gpu_image("rayproject/ray:2.60.0-py311-gpu")
    assert _is_gpu_image("rayproject/ray:2.60.0-py311-cu128")
    assert not _is_gpu_image("rayproject/ray:2.60.0-py311-cpu")


@pytest.mark.parametrize("path", _all_yaml_files(), ids=_rel)
def test_images_match_installed_ray_and_python(path: Path):
    images = _images_of(path)
    assert images, f"{path}: no images found"
    for image in images:
        parts = _tag(image).split("-")
        assert parts[0] == RAY_VERSION, f"{path}: {image} is not Ray {RAY_VERSION}"
        assert PY_TAG in parts, f"{path}: {image} is not for Python {PY_TAG}"


# --------------------------------------------------------------------------- autoscaler


@pytest.fixture(params=sorted(AUTOSCALER_FILES), ids=str)
def autoscaler(request):
    path = CLUSTER / request.param
    return path, _load(path)


def _resources(spec: dict) -> dict:
    res = spec["resources"]
    assert isinstance(res, dict)
    return res


def test_autoscaler_top_level(autoscaler):
    path, cfg = autoscaler
    provider_type, region = AUTOSCALER_FILES[path.name]
    assert cfg["cluster_name"] == "synpref"
    assert cfg["provider"]["type"] == provider_type
    assert cfg["provider"]["region"] == region
    if provider_type == "gcp":
        assert cfg["provider"]["project_id"]
    assert isinstance(cfg["idle_timeout_minutes"], (int, float)) and cfg["idle_timeout_minutes"] > 0
    for key in ("file_mounts", "setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in cfg, f"{path}: missing {key}"
    types = cfg["available_node_types"]
    assert isinstance(types, dict) and types
    assert cfg["head_node_type"] in types, f"{path}: head_node_type names no node type"


def test_autoscaler_node_types(autoscaler):
    path, cfg = autoscaler
    types = cfg["available_node_types"]
    for name, spec in types.items():
        for key in ("resources", "min_workers", "max_workers", "node_config"):
            assert key in spec, f"{path}: {name} lacks {key}"
        assert isinstance(spec["min_workers"], int) and isinstance(spec["max_workers"], int)
        assert 0 <= spec["min_workers"] <= spec["max_workers"], f"{path}: {name} min > max"
        assert all(isinstance(v, int) and v >= 0 for v in _resources(spec).values())
        if name != cfg["head_node_type"]:
            assert spec["max_workers"] <= cfg["max_workers"], (
                f"{path}: {name} can never reach max_workers={spec['max_workers']} "
                f"under the global max_workers={cfg['max_workers']}"
            )
    assert cfg["max_workers"] >= 1


def test_autoscaler_head_is_cpu_only(autoscaler):
    path, cfg = autoscaler
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert _resources(head).get("GPU", 0) == 0, f"{path}: GPU work could be scheduled on the head"
    assert "CPU" in _resources(head)
    assert not _is_gpu_image(_node_image(cfg, cfg["head_node_type"]))


def _worker_types(cfg: dict) -> dict:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def test_autoscaler_has_cpu_and_gpu_pools(autoscaler):
    path, cfg = autoscaler
    workers = _worker_types(cfg)
    cpu = [n for n, s in workers.items() if _resources(s).get("CPU", 0) > 0 and not _resources(s).get("GPU")]
    gpu = [n for n, s in workers.items() if _resources(s).get("GPU", 0) > 0]
    assert cpu, f"{path}: no CPU-only worker type"
    assert gpu, f"{path}: no worker type with GPU resources"
    assert any(workers[n]["min_workers"] == 0 for n in gpu), f"{path}: GPU pool does not scale to zero"
    assert all(workers[n]["max_workers"] > 0 for n in cpu + gpu)
    for n in gpu:
        assert _is_gpu_image(_node_image(cfg, n)), f"{path}: GPU type {n} runs a CPU image"
    for n in cpu:
        assert not _is_gpu_image(_node_image(cfg, n)), f"{path}: CPU type {n} runs a GPU image"


def _setup_commands(cfg: dict, node_type: str) -> list[str]:
    """What the autoscaler runs to set a node of this type up (Ray's precedence)."""
    if node_type == cfg["head_node_type"]:
        return list(cfg.get("setup_commands") or []) + list(cfg.get("head_setup_commands") or [])
    spec = cfg["available_node_types"][node_type]
    if "worker_setup_commands" in spec:  # per-type list replaces both global lists
        return list(spec["worker_setup_commands"])
    return list(cfg.get("setup_commands") or []) + list(cfg.get("worker_setup_commands") or [])


def _repo_mount(cfg: dict) -> str:
    mounts = {r: l for r, l in (cfg.get("file_mounts") or {}).items() if l in (".", "./")}
    assert len(mounts) == 1, "file_mounts must sync the repo ('.') to one remote path"
    return next(iter(mounts))


def test_autoscaler_installs_the_project(autoscaler):
    path, cfg = autoscaler
    remote = _repo_mount(cfg)
    for name, spec in cfg["available_node_types"].items():
        cmds = " ; ".join(_setup_commands(cfg, name))
        assert f"cd {remote}" in cmds, f"{path}: {name} never enters the synced repo {remote}"
        assert re.search(r"pip install -e\s+['\"]?\.", cmds), f"{path}: {name} does not pip install -e the project"
        wants_gpu_extra = _resources(spec).get("GPU", 0) > 0
        has_gpu_extra = re.search(r"\.\[[^\]]*\bgpu\b[^\]]*\]", cmds) is not None
        assert has_gpu_extra == wants_gpu_extra, f"{path}: {name}: gpu extra installed={has_gpu_extra}"


def test_autoscaler_start_commands(autoscaler):
    path, cfg = autoscaler
    head = " ".join(cfg["head_start_ray_commands"])
    worker = " ".join(cfg["worker_start_ray_commands"])
    assert "ray start" in head and "--head" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "ray start" in worker and "--head" not in worker
    assert "--address=$RAY_HEAD_IP:6379" in worker


def test_autoscaler_header_says_how_to_use_it(autoscaler):
    path, _ = autoscaler
    header = _header(path)
    rel = _rel(path)
    assert f"ray up {rel}" in header
    assert f"ray dashboard {rel}" in header
    submit = re.search(r"ray job submit (.*?) -- python (jobs/\w+\.py) (.*)", header)
    assert submit, f"{path}: header lacks a `ray job submit ... -- python jobs/...` example"
    assert "--address http://127.0.0.1:8265" in submit.group(1)
    assert "--working-dir ." in submit.group(1)
    assert "data.input=" in submit.group(3) and "data.output=" in submit.group(3)


def test_autoscaler_matches_rays_schema(autoscaler):
    """Validate against the JSON schema the installed Ray's `ray up` uses."""
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    if not schema_path.is_file():
        pytest.skip(f"no {schema_path}")
    path, cfg = autoscaler
    jsonschema.validate(cfg, json.loads(schema_path.read_text()))


def test_autoscaler_passes_rays_own_validation(autoscaler):
    """What `ray up` does before touching the cloud: fill defaults, then validate (offline)."""
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError:  # private API; moved in some Ray version
        pytest.skip("ray.autoscaler._private.util.prepare_config/validate_config not available")
    path, cfg = autoscaler
    prepared = prepare_config(cfg)
    validate_config(prepared)
    assert prepared["head_node_type"] == cfg["head_node_type"]
    assert set(prepared["available_node_types"]) == set(cfg["available_node_types"])


# --------------------------------------------------------------------------- KubeRay


def _kuberay(name: str) -> dict:
    doc = _load(KUBERAY / name)
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == KUBERAY_FILES[name]
    assert doc["metadata"]["name"]
    return doc


def _cluster_spec(doc: dict) -> dict:
    spec = doc["spec"]
    return {
        "RayCluster": lambda: spec,
        "RayJob": lambda: spec["rayClusterSpec"],
        "RayService": lambda: spec["rayClusterConfig"],
    }[doc["kind"]]()


def _limits(container: dict) -> dict:
    return (container.get("resources") or {}).get("limits") or {}


def _gpus(group: dict) -> int:
    return sum(int(_limits(c).get(GPU, 0)) for c in _containers(group["template"]))


@pytest.mark.parametrize("name", sorted(KUBERAY_FILES))
def test_kuberay_cluster_spec(name: str):
    path = KUBERAY / name
    cluster = _cluster_spec(_kuberay(name))
    assert cluster["enableInTreeAutoscaling"] is True, f"{path}: autoscaling off"
    assert str(cluster["rayVersion"]) == RAY_VERSION, f"{path}: rayVersion != installed Ray {RAY_VERSION}"

    head = cluster["headGroupSpec"]
    assert _containers(head["template"]), f"{path}: head has no containers"
    assert _gpus(head) == 0, f"{path}: head requests GPUs"
    assert all(not _is_gpu_image(c["image"]) for c in _containers(head["template"]))

    groups = cluster["workerGroupSpecs"]
    names = [g["groupName"] for g in groups]
    assert len(names) == len(set(names)), f"{path}: duplicate groupName"
    for g in groups:
        assert g["minReplicas"] == 0, f"{path}: {g['groupName']} does not scale to zero"
        assert g["minReplicas"] <= g.get("replicas", 0) <= g["maxReplicas"], f"{path}: {g['groupName']}"
        assert g["maxReplicas"] > 0
        for c in _containers(g["template"]):
            requests = (c.get("resources") or {}).get("requests") or {}
            if GPU in _limits(c) or GPU in requests:
                assert int(_limits(c).get(GPU, 0)) == int(requests.get(GPU, _limits(c).get(GPU, 0)))

    gpu_groups = [g for g in groups if _gpus(g) > 0]
    cpu_groups = [g for g in groups if _gpus(g) == 0]
    assert gpu_groups, f"{path}: no worker group with {GPU}"
    assert cpu_groups, f"{path}: no CPU-only worker group"
    for g in gpu_groups:
        assert all(_is_gpu_image(c["image"]) for c in _containers(g["template"])), g["groupName"]
    for g in cpu_groups:
        assert not any(_is_gpu_image(c["image"]) for c in _containers(g["template"])), g["groupName"]


@pytest.mark.parametrize("name", sorted(KUBERAY_FILES))
def test_kuberay_header_says_how_to_apply(name: str):
    assert f"kubectl apply -f cluster/kuberay/{name}" in _header(KUBERAY / name)


def _entrypoint_script() -> tuple[str, list[str]]:
    entrypoint = _kuberay("rayjob.yaml")["spec"]["entrypoint"]
    argv = shlex.split(entrypoint)
    assert argv[0] in ("python", "python3"), entrypoint
    return entrypoint, argv


def test_rayjob_entrypoint_shape():
    entrypoint, argv = _entrypoint_script()
    script = Path(argv[1])
    assert script.parent == Path("jobs") and script.suffix == ".py", f"not jobs/<name>.py: {argv[1]}"
    assert script.name in entrypoint
    overrides = argv[2:]
    assert all(re.fullmatch(r"[+~]{0,2}[\w.\-/]+=\S*", o) for o in overrides), overrides  # Hydra key=value
    keys = {o.split("=", 1)[0] for o in overrides}
    assert {"data.input", "data.output"} <= keys


def test_rayjob_entrypoint_script_exists():
    _, argv = _entrypoint_script()
    script = ROOT / argv[1]
    written = sorted(p.name for p in (ROOT / "jobs").glob("*.py"))
    assert script.is_file(), f"RayJob runs {argv[1]}, but jobs/ only has {written}"
    assert script.parent == ROOT / "jobs"


def test_rayjob_lifecycle_and_runtime_env():
    spec = _kuberay("rayjob.yaml")["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert isinstance(env, dict) and env.get("working_dir"), "runtimeEnvYAML needs a working_dir"
    # A RayJob cannot upload a local directory: working_dir must be a remote URI.
    assert re.match(r"^(https?|s3|gs)://", env["working_dir"]), env["working_dir"]


def _serve_apps() -> list[dict]:
    spec = _kuberay("rayservice.yaml")["spec"]
    serve = yaml.safe_load(spec["serveConfigV2"])
    apps = serve["applications"]
    assert isinstance(apps, list) and apps
    return apps


def test_rayservice_serves_serve_rm_at_root():
    apps = _serve_apps()
    prefixes = [a.get("route_prefix") for a in apps]
    assert len(prefixes) == len(set(prefixes)), "duplicate route_prefix"
    rm = [a for a in apps if a["import_path"].partition(":")[0] == "jobs.serve_rm"]
    assert len(rm) == 1, [a["import_path"] for a in apps]
    module, _, attr = rm[0]["import_path"].partition(":")
    assert attr == "app"
    assert rm[0]["route_prefix"] == "/"
    assert rm[0]["name"]
    assert (rm[0].get("runtime_env") or {}).get("working_dir"), "the app needs the repo as working_dir"


def test_rayservice_import_path_resolves():
    app = next(a for a in _serve_apps() if a["import_path"].startswith("jobs.serve_rm"))
    module, _, attr = app["import_path"].partition(":")
    source = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    assert source.is_file(), f"the RayService imports {_rel(source)}, which does not exist"
    tree = ast.parse(source.read_text())
    bound = set()
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        for t in targets:
            bound.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    assert attr in bound, f"{_rel(source)} defines no top-level {attr!r}"
