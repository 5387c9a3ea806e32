"""Stage 1's streamed pool search on a real local Ray: the exact path equals brute force over the whole
matrix, whatever the block size; the inverted file finds most of the exact neighbours."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synpref.curation.pool_ivf import nearest_in_cells, recall, train_centroids, write_cells
from synpref.curation.pool_search import nearest_in_pool, top_k_positions

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_pool(n: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(clusters, DIM)))
    return unit(centres[rng.integers(0, clusters, n)] + 0.06 * rng.normal(size=(n, DIM)))


def near_the_pool(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Queries like gold pairs: close to some pool pairs."""
    rng = np.random.default_rng(seed)
    return unit(vectors[rng.choice(len(vectors), n, replace=False)] + 0.03 * rng.normal(size=(n, DIM)))


def brute_force(ids: list[str], vectors: np.ndarray, queries: np.ndarray, k: int, taken: set) -> list[list[str]]:
    """Every similarity at once, sorted by (similarity desc, pair_id): the answer search must give."""
    out = []
    for q in queries:
        sims = vectors @ q
        ranked = sorted((-float(s), i) for s, i, key in zip(sims, ids, ids) if key not in taken)
        out.append([i for _, i in ranked[:k]])
    return out


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    import ray

    root = tmp_path_factory.mktemp("pool")
    vectors = clustered_pool(6000, 40, seed=1)
    ids = [f"p{i:05d}" for i in range(len(vectors))]
    for part in range(3):  # three files of unequal size
        lo, hi = [(0, 1000), (1000, 3500), (3500, 6000)][part]
        pq.write_table(pa.table({"pair_id": ids[lo:hi], "key": ids[lo:hi],
                                 "vector": pa.array(vectors[lo:hi].tolist(), pa.list_(pa.float32()))}),
                       root / f"part-{part}.parquet")
    ray.init(num_cpus=2, include_dashboard=False)
    yield {"path": str(root), "ids": ids, "vectors": vectors}
    ray.shutdown()


def test_block_top_k_breaks_ties_by_pair_id():
    similarity = np.array([[0.5, 0.9, 0.5, 0.5]], np.float32)
    ids = np.array(["d", "a", "c", "b"], dtype=object)
    assert ids[top_k_positions(similarity, ids, 3)[0]].tolist() == ["a", "b", "c"]


@pytest.mark.e2e
@pytest.mark.parametrize("batch_rows", [97, 65_536])
def test_exact_search_equals_brute_force(pool, batch_rows):
    import ray

    queries = near_the_pool(pool["vectors"], 50, seed=2)
    taken = set(pool["ids"][::7])  # verified pairs are never candidates
    found, sims, candidates = nearest_in_pool(ray.data.read_parquet(pool["path"]), queries, 8, taken=frozenset(taken),
                                              batch_rows=batch_rows)
    assert found == brute_force(pool["ids"], pool["vectors"], queries, 8, taken)
    assert candidates == len(pool["ids"]) - len(taken)
    assert all(s == sorted(s, reverse=True) for s in sims)


@pytest.mark.e2e
def test_exact_search_of_no_queries_still_counts_candidates(pool):
    import ray

    found, _, candidates = nearest_in_pool(ray.data.read_parquet(pool["path"]), np.zeros((0, DIM)), 4)
    assert found == [] and candidates == len(pool["ids"])


@pytest.mark.e2e
def test_inverted_file_recall_against_exact(pool, tmp_path):
    import ray

    embeddings = ray.data.read_parquet(pool["path"])
    centroids = train_centroids(embeddings, cells=32, sample_rows=3000)
    cells = str(tmp_path / "cells")
    write_cells(embeddings, centroids, cells)
    queries = near_the_pool(pool["vectors"], 50, seed=3)
    exact, _, _ = nearest_in_pool(embeddings, queries, 8)
    approximate, _, _ = nearest_in_cells(cells, centroids, queries, 8, probes=4)
    assert recall(approximate, exact) >= 0.9
    _, _, read = nearest_in_cells(cells, centroids, queries[:2], 8, probes=4)
    assert read <= len(pool["ids"]) / 2  # two queries probe at most 8 of 32 cells: the rest is never read
    every_cell, _, _ = nearest_in_cells(cells, centroids, queries, 8, probes=32)
    assert every_cell == exact  # probing every cell is exact search
