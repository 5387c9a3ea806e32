"""The preprocess and score jobs on a two-node Ray cluster on this machine (ray.cluster_utils.Cluster:
a head and a second raylet), submitted the way a user points a job at a cluster (ray.address=...).

Which node ran what comes from Ray's state API (the tasks and actors of each job). The fault test
removes the worker node while a score run streams: the run finishes on the head, and its output
equals the output of the run without the fault, pair by pair and score by score.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synpref.demo.pool import write_demo_pool
from synpref.demo.tiny_models import build_tiny_model
from synpref.record.pairs_io import read_pairs
from synpref.record.resumable import CHECKPOINTS, committed_pairs
from tests.conftest import REPO, run_job
from tests.jobs.test_score_resume import write_pool

pytestmark = pytest.mark.e2e
SCORE_PAIRS = 2000


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # three logical CPUs a node: a two-CPU scoring actor fits once per node, with a CPU left for reads
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3})
    worker = cluster.add_node(num_cpus=3)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


def nodes_of(address: str, names: tuple[str, ...]) -> set[str]:
    """Node ids where the cluster's tasks and actors whose names contain any of `names` ran."""
    import ray
    from ray.util.state import list_actors, list_tasks

    ray.init(address=address)
    try:
        found = {t.node_id for t in list_tasks(limit=10_000, detail=True)
                 if t.node_id and any(n in t.name for n in names)}
        found |= {a.node_id for a in list_actors(limit=10_000, detail=True)
                  if a.node_id and any(n in a.class_name for n in names)}
        return found
    finally:
        ray.shutdown()


def node_ids(address: str) -> set[str]:
    import ray

    ray.init(address=address)
    try:
        return {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()


def test_preprocess_runs_on_both_nodes(cluster, tmp_path):
    head, _ = cluster
    write_demo_pool(tmp_path / "raw", n_pairs=400)
    proc = run_job("preprocess.py", f"data.input={tmp_path / 'raw'}", f"data.output={tmp_path / 'out'}",
                   "decontam.enabled=false", f"ray.address={head.address}", "lines_per_block=20", "actors=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["totals"]["kept"] > 0
    seen = nodes_of(head.address, ("PreprocessBatch", "Read"))
    assert seen == node_ids(head.address), seen


def score_args(model: str, data: Path, output: Path, address: str) -> list[str]:
    return [f"data.input={data}", f"data.output={output}", f"models=[{{name: rm, path: {model}}}]", "max_length=64",
            "batch_size=50", "resume_block_pairs=100", "actors=2", "transformers.cpus_per_actor=2",
            "transformers.torch_threads=1", "wandb.mode=disabled", f"ray.address={address}"]


def scores(output: Path) -> list:
    """(pair_id, status, (model, r_chosen, r_rejected)...) of every row, sorted: a row written twice shows up twice."""
    return sorted((r["pair_id"], r["status"], tuple((s["model"], s["r_chosen"], s["r_rejected"]) for s in r["rm_scores"] or []))
                  for r in read_pairs(str(output / "pairs"), status=None))


def same_scores(a: list, b: list) -> bool:
    """Equal pairs and statuses, rewards to 1e-5: a retried block is batched with other pairs, and the
    padding of a micro-batch changes the last bits of a float32 sum."""
    return len(a) == len(b) and all(
        x[:2] == y[:2] and len(x[2]) == len(y[2]) and all(
            m == n and abs(c - d) < 1e-5 and abs(r - q) < 1e-5 for (m, c, r), (n, d, q) in zip(x[2], y[2]))
        for x, y in zip(a, b))


def test_score_on_both_nodes_and_a_lost_node(cluster, tmp_path):
    head, worker = cluster
    model = build_tiny_model(tmp_path / "rm", kind="seq_cls", seed=0)
    write_pool(tmp_path / "in", SCORE_PAIRS)
    clean = run_job("score.py", *score_args(model, tmp_path / "in", tmp_path / "clean", head.address))
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    assert nodes_of(head.address, ("ScorePairs",)) == node_ids(head.address)

    output = tmp_path / "faulty"
    job = subprocess.Popen([sys.executable, str(REPO / "jobs" / "score.py"),
                            *score_args(model, tmp_path / "in", output, head.address)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while committed_pairs(str(output / CHECKPOINTS)) < SCORE_PAIRS * 0.2:  # mid-stream: some blocks written
        assert job.poll() is None, "the score run ended before the node was removed"
        assert time.time() < deadline
        time.sleep(0.3)
    head.remove_node(worker)  # the worker raylet and everything on it die
    out, _ = job.communicate(timeout=900)
    assert job.returncode == 0, out[-4000:]
    assert same_scores(scores(output), scores(tmp_path / "clean"))
    assert len(scores(output)) == SCORE_PAIRS + 1  # and the clean run wrote each pair once
