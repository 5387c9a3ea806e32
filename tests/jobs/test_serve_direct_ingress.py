"""jobs/serve_rm.py with http.direct_ingress=true, as a user starts it: the ingress replica itself
listens on http.port (no Serve proxy actor on the way), answers the routes, and errors as JSON."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from synpref.demo.tiny_models import build_tiny_model
from tests.conftest import REPO
from tests.serve_helpers import free_port

pytestmark = pytest.mark.e2e


def listener(port: int) -> str:
    """The title of the process listening on 127.0.0.1:port."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return " ".join(psutil.Process(conn.pid).cmdline())
    return ""


def test_the_replica_answers_http_itself(tmp_path):
    model = build_tiny_model(tmp_path / "rm", kind="seq_cls", seed=0)
    port = free_port()
    job = subprocess.Popen([sys.executable, str(REPO / "jobs" / "serve_rm.py"), f"model={model}", "model_name=rm",
                            f"http.port={port}", "http.direct_ingress=true", "ray.num_cpus=2"],
                           cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            assert job.poll() is None, "serve_rm.py exited"
            assert time.time() < deadline, "not up after 300 s"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        assert listener(port).startswith("ray::ServeReplica"), listener(port)
        assert listener(port + 1).startswith("ray::ProxyActor")  # Serve's proxy, moved aside
        answer = httpx.post(f"{url}/classify", json={"model": "rm", "input": ["hello", "a longer text"]}, timeout=60)
        assert answer.status_code == 200 and len(answer.json()["data"]) == 2
        bad = httpx.post(f"{url}/classify", content=b"{bad", headers={"content-type": "application/json"}, timeout=30)
        assert bad.status_code == 400 and json.loads(bad.text)["error"]["message"].startswith("malformed JSON")
        assert httpx.get(f"{url}/nowhere", timeout=30).json()["error"]["code"] == 404
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        try:
            job.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
