"""Approximate nearest pool pairs: an inverted file over the pool's embeddings, kept in Parquet.

For pools of many millions, exact search costs pool x queries dot products per Stage 1 iteration.
The inverted file (IVF) splits the pool into `cells` by the nearest of `cells` centroids (k-means
on a sample), once, and writes the pool partitioned by cell. A query then scores only the pairs of
its `probes` nearest cells: about probes / cells of the exact cost. Stage 1 runs every iteration over
the same partitioned pool, so the split is paid once. The recall against exact search depends on
the data; bench/curation_scale.py and the tests measure it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from synpref.curation.pool_search import BLOCK_ROWS, TopK, candidates_of, count_row, top_k_positions, vectors_of

CELL = "cell"


def train_centroids(embeddings, *, cells: int, sample_rows: int, seed: int = 0) -> np.ndarray:
    """Unit-norm k-means centroids of a random sample of the pool (spherical k-means, faiss)."""
    import faiss

    total = embeddings.count()
    sample = embeddings if total <= sample_rows else embeddings.random_sample(sample_rows / total, seed=seed)
    vectors = np.concatenate([vectors_of(b["vector"]) for b in sample.select_columns(["vector"]).iter_batches(
        batch_format="pyarrow", batch_size=None)])
    cells = max(1, min(cells, len(vectors)))
    kmeans = faiss.Kmeans(vectors.shape[1], cells, niter=20, seed=seed, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(vectors))
    return kmeans.centroids.astype(np.float32)


def save_centroids(path: str, centroids: np.ndarray) -> None:
    import pyarrow.parquet as pq

    from synpref.record import storage

    fs, file = storage.filesystem(path)
    fs.create_dir(file.rsplit("/", 1)[0], recursive=True)
    pq.write_table(pa.table({"centroid": pa.array(centroids.tolist(), pa.list_(pa.float32()))}), file, filesystem=fs)


def load_centroids(path: str) -> np.ndarray:
    import pyarrow.parquet as pq

    from synpref.record import storage

    fs, file = storage.filesystem(path)
    return vectors_of(pq.read_table(file, filesystem=fs)["centroid"])


def with_cell(batch: pa.Table, *, centroids: np.ndarray) -> pa.Table:
    cell = np.argmax(vectors_of(batch["vector"]) @ centroids.T, axis=1)
    return batch.append_column(CELL, pa.array(cell, pa.int32()))


def write_cells(embeddings, centroids: np.ndarray, folder: str) -> None:
    """The pool's embeddings with their cell, partitioned by it (folder/cell=<c>/...)."""
    embeddings.map_batches(with_cell, batch_format="pyarrow", batch_size=BLOCK_ROWS,
                           fn_kwargs=dict(centroids=centroids)).write_parquet(folder, partition_cols=[CELL])


def probers_by_cell(queries: np.ndarray, centroids: np.ndarray, probes: int) -> dict[int, np.ndarray]:
    """cell -> the queries that probe it (each query probes its `probes` nearest cells)."""
    probes = min(probes, len(centroids))
    nearest = np.argsort(-(queries @ centroids.T), axis=1)[:, :probes]
    probers: dict[int, list[int]] = {}
    for query, cells in enumerate(nearest):
        for cell in cells:
            probers.setdefault(int(cell), []).append(query)
    return {cell: np.asarray(qs) for cell, qs in probers.items()}


def block_top_k_probed(batch: pa.Table, *, queries: np.ndarray, k: int, probers: dict,
                       taken: frozenset = frozenset()) -> pa.Table:
    """Like pool_search.block_top_k, but each cell's pairs are scored only against the queries that
    probe it."""
    keep, ids = candidates_of(batch, taken)
    vectors = vectors_of(batch["vector"])[keep] if len(ids) else None
    cells = np.asarray([int(c) for c in batch[CELL].to_pylist()])[keep]  # read back from hive folders as text
    out = {"query": [], "pair_ids": [], "similarities": [], "candidates": []}
    for cell in np.unique(cells):
        asking = probers.get(int(cell))
        if asking is None:
            continue
        here = cells == cell
        similarity = queries[asking] @ vectors[here].T
        best = top_k_positions(similarity, ids[here], k)
        for row, query in enumerate(asking):
            out["query"].append(int(query))
            out["pair_ids"].append(ids[here][best[row]].tolist())
            out["similarities"].append(similarity[row, best[row]].tolist())
            out["candidates"].append(0)
    table = pa.table({"query": pa.array(out["query"], pa.int64()), "pair_ids": pa.array(out["pair_ids"], pa.list_(pa.string())),
                      "similarities": pa.array(out["similarities"], pa.list_(pa.float32())),
                      "candidates": pa.array(out["candidates"], pa.int64())})
    return pa.concat_tables([table, count_row(len(ids))])


def nearest_in_cells(cells_dataset_path: str, centroids: np.ndarray, queries: np.ndarray, k: int, *,
                     probes: int, taken: frozenset = frozenset()) -> tuple[list[list[str]], list[list[float]], int]:
    """Approximate nearest_in_pool over a folder written by write_cells: only the probed cells are read.
    The candidate count is over the probed cells only."""
    import ray
    from ray.data.expressions import col

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    result = TopK(len(queries), k)
    if not len(queries):
        return result.ids, result.similarities, 0
    probers = probers_by_cell(queries, centroids, probes)
    probed = ray.data.read_parquet(cells_dataset_path).filter(  # hive partition values are strings
        expr=col(CELL).is_in([str(c) for c in sorted(probers)]))
    partial = probed.map_batches(block_top_k_probed, batch_format="pyarrow", batch_size=BLOCK_ROWS,
                                 fn_kwargs=dict(queries=queries, k=k, probers=probers, taken=frozenset(taken)))
    for rows in partial.iter_batches(batch_format="pyarrow", batch_size=None):
        result.fold(rows)
    return result.ids, result.similarities, result.candidates


def recall(approximate: list[list[str]], exact: list[list[str]]) -> float:
    """Share of the exact top k that the approximate search found too."""
    wanted = sum(len(e) for e in exact)
    return sum(len(set(a) & set(e)) for a, e in zip(approximate, exact)) / wanted if wanted else 1.0
