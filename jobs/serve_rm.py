"""Serve Bradley-Terry reward models over HTTP with Ray Serve (DESIGN.md section 6).

Reads:  conf/serve_rm.yaml (model or models: checkpoint folders, hub ids or synpref built-ins)
Serves: POST /v1/reward, /v1/compare (native: conversation + response, formatted by synpref.rm.format),
        POST /classify, /pooling, /score, /rerank (vLLM's shapes), POST /get_reward (OpenRLHF),
        GET /health (public), /v1/models on http.host:http.port (127.0.0.1:8000 by default), bearer
        token from $SYNPREF_SERVE_TOKEN if set (without one: loopback or a private address only, the
        mode for OpenRLHF and verl, which send no token).

    python jobs/serve_rm.py model=outputs/rm/model                     # starts Ray + Serve, blocks
    serve run jobs.serve_rm:app model=outputs/rm/model                  # the same application via the Serve CLI
    serve deploy conf/serve_deploy.yaml                              # onto a running cluster
    kubectl apply -f cluster/kuberay/rayservice.yaml                 # KubeRay (import_path jobs.serve_rm:app)

`app` is the Serve application builder (Serve calls it with the `args` of `serve run key=value` or of
a config file's `args:` block, merged over conf/serve_rm.yaml); `main` is the Hydra entry point.
"""

import os
import signal
import sys
import threading
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.runner import runs  # noqa: E402
from synpref.runner.errors import BadConfig  # noqa: E402
from synpref.runner.job import exits_with_status  # noqa: E402
from synpref.serving.app import build_app  # noqa: E402
from synpref.serving.settings import (auth_token, config_problems, load_settings, model_specs,  # noqa: E402
                                      private_address)

CONF = Path(__file__).resolve().parents[1] / "conf" / "serve_rm.yaml"  # travels with jobs/ in a working_dir
ROUTES = ("POST /v1/reward", "POST /v1/compare", "POST /classify", "POST /pooling", "POST /score", "POST /rerank",
          "POST /tokenize", "POST /get_reward", "GET /health", "GET /v1/models")


def app(args: dict):
    """Serve application builder: `serve run jobs.serve_rm:app model=...`, serve deploy, KubeRay."""
    return build_app(load_settings(args, CONF))


def check_config(cfg: DictConfig) -> list[str]:
    problems = config_problems(cfg)
    if cfg.http.direct_ingress and (cfg.ingress.autoscaling_config or cfg.ingress.num_replicas > 1):
        problems.append("http.direct_ingress=true gives the ingress one port (http.port): serve it with "
                        "ingress.num_replicas=1 and no ingress.autoscaling_config, or set http.direct_ingress=false")
    if not auth_token(cfg) and not private_address(cfg.http.host):
        problems.append(f"http.host={cfg.http.host} serves beyond a private network without a token: export "
                        f"{cfg.auth.token_env}=<secret> first, or bind a loopback or private address (the "
                        "token-less mode for RLHF trainers that send no token)")
    return problems


def direct_ingress(cfg: DictConfig) -> bool:
    """Ray Serve's direct ingress for the local cluster this job starts (its processes inherit the
    driver's environment): the ingress replica binds http.port itself, no proxy actor on the way."""
    if runs.joins_cluster(cfg.ray.address):
        print("http.direct_ingress: this job joins a running cluster; direct ingress is on only if the cluster "
              "was started with RAY_SERVE_ENABLE_DIRECT_INGRESS=1 (and the port range) in its environment")
        return False
    port = str(cfg.http.port)
    os.environ.update(RAY_SERVE_ENABLE_DIRECT_INGRESS="1", RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=port,
                      RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=str(cfg.http.port + 1))  # the range ends before max
    return True


@hydra.main(config_path="../conf", config_name="serve_rm", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> None:
    import ray
    from ray import serve

    problems = check_config(cfg)
    if problems:
        raise BadConfig(problems, job="serve_rm")
    # direct ingress: the replica takes http.port and Serve's proxy (still started on the head) the next one
    proxy_port = cfg.http.port + 1 if cfg.http.direct_ingress and direct_ingress(cfg) else cfg.http.port
    ray.init(address=cfg.ray.address, num_cpus=runs.local_num_cpus(cfg.ray.address, cfg.ray.num_cpus))
    serve.start(http_options={"host": cfg.http.host, "port": proxy_port})
    serve.run(build_app(cfg), name="synpref-rm", route_prefix="/")
    url = f"http://{cfg.http.host}:{cfg.http.port}"
    print(f"serving {list(model_specs(cfg))} at {url} (auth: {'bearer token' if auth_token(cfg) else 'none'}):")
    for route in ROUTES:
        print(f"  {route}")
    print("Ctrl-C (or SIGTERM) stops the server", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # shut Ray down cleanly, not just die
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
