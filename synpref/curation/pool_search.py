"""Nearest pool pairs of a few queries, streamed: no process ever holds the pool (DESIGN.md section 2).

Stage 1 asks, for each of a few thousand gold pairs, for its k nearest unverified pairs of a pool of
tens of millions. The pool's embeddings stay in Parquet. Exact search streams them past the query
matrix: each block scores every query (queries @ block.T) and keeps its own top k per query, and the
driver folds those partial lists into a running top k per query as they arrive, so it holds only
n_queries x k ids. Approximate search (`ivf`) reads only the cells each query probes; see pool_ivf.py.

Ties are broken by pair_id, so the answer does not depend on block boundaries or their order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

BLOCK_ROWS = 32_768  # pool rows per call: 32k x 384 floats is 50 MB; with 1,000 queries the similarities are 130 MB


def vectors_of(column) -> np.ndarray:
    """An embedding column (Ray's tensor extension or a plain list column) as an (n, dim) float32 matrix."""
    if isinstance(column, np.ndarray) and column.ndim == 2:
        return column.astype(np.float32, copy=False)
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        flat = [(c.storage if isinstance(c, pa.ExtensionArray) else c) for c in chunks]
        rows = sum(len(c) for c in flat)
        if rows == 0:
            return np.zeros((0, 0), np.float32)
        values = np.concatenate([c.flatten().to_numpy(zero_copy_only=False) for c in flat])
        return values.astype(np.float32, copy=False).reshape(rows, -1)
    return np.stack(list(column)).astype(np.float32)


def count_row(candidates: int) -> pa.Table:
    """The row (query -1) that carries a block's number of candidate pairs."""
    return pa.table({"query": pa.array([-1], pa.int64()), "pair_ids": pa.array([[]], pa.list_(pa.string())),
                     "similarities": pa.array([[]], pa.list_(pa.float32())), "candidates": pa.array([candidates], pa.int64())})


def candidates_of(batch: pa.Table, taken: frozenset) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the batch's rows whose key is not in `taken`, those rows' pair_ids)."""
    keep = np.array([key not in taken for key in batch["key"].to_pylist()], dtype=bool)
    return keep, np.asarray(batch["pair_id"].to_pylist(), dtype=object)[keep]


def block_top_k(batch: pa.Table, *, queries: np.ndarray, k: int, taken: frozenset = frozenset()) -> pa.Table:
    """One row per query with the block's k best candidates (pair_ids, similarities), and a count_row.
    A candidate is a row whose key is not in `taken`."""
    keep, ids = candidates_of(batch, taken)
    if not len(ids) or not k or not len(queries):
        return count_row(len(ids))
    similarity = queries @ vectors_of(batch["vector"])[keep].T
    best = top_k_positions(similarity, ids, k)
    table = pa.table({"query": pa.array(np.arange(len(queries)), pa.int64()),
                      "pair_ids": pa.array(ids[best].tolist(), pa.list_(pa.string())),
                      "similarities": pa.array(np.take_along_axis(similarity, best, 1).tolist(), pa.list_(pa.float32())),
                      "candidates": pa.array(np.zeros(len(queries), np.int64))})
    return pa.concat_tables([table, count_row(len(ids))])


def top_k_positions(similarity: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Per row of `similarity` (queries x candidates), the positions of its k best, best first, ties
    to the smaller pair_id."""
    k = min(k, similarity.shape[1])
    order = np.argsort(ids.astype(str), kind="stable")  # rank of each candidate's id, for the tie-break
    id_rank = np.empty(len(ids), np.int64)
    id_rank[order] = np.arange(len(ids))
    if k < similarity.shape[1]:  # a k-th-value cut, kept with everything tied to it
        cut = np.partition(similarity, -k, axis=1)[:, -k][:, None]
        rows, cols = np.nonzero(similarity >= cut)
    else:
        rows, cols = np.nonzero(np.ones_like(similarity, dtype=bool))
    ranked = np.lexsort((id_rank[cols], -similarity[rows, cols], rows))
    rows, cols = rows[ranked], cols[ranked]
    starts = np.searchsorted(rows, np.arange(similarity.shape[0]))
    place = np.arange(len(rows)) - starts[rows]
    out = np.zeros((similarity.shape[0], k), np.int64)
    mask = place < k
    out[rows[mask], place[mask]] = cols[mask]
    return out


class TopK:
    """The running top k per query, folded from partial lists in any order."""

    def __init__(self, n_queries: int, k: int):
        self.k = k
        self.ids: list[list[str]] = [[] for _ in range(n_queries)]
        self.similarities: list[list[float]] = [[] for _ in range(n_queries)]
        self.candidates = 0

    def fold(self, rows: pa.Table) -> None:
        for query, ids, sims, candidates in zip(rows["query"].to_pylist(), rows["pair_ids"].to_pylist(),
                                                rows["similarities"].to_pylist(), rows["candidates"].to_pylist()):
            if query < 0:
                self.candidates += candidates
                continue
            merged = sorted(zip(self.similarities[query] + sims, self.ids[query] + ids),
                            key=lambda pair: (-pair[0], pair[1]))[:self.k]
            self.similarities[query] = [s for s, _ in merged]
            self.ids[query] = [i for _, i in merged]


def nearest_in_pool(embeddings, queries: np.ndarray, k: int, *, taken: frozenset = frozenset(),
                    batch_rows: int = BLOCK_ROWS) -> tuple[list[list[str]], list[list[float]], int]:
    """Exact: per query the pair_ids of its k nearest pool pairs whose key is not in `taken`, best
    first, their similarities, and the number of such candidates. `embeddings` is a Ray Dataset of
    {pair_id, key, vector} rows (unit vectors, so similarity is cosine)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    result = TopK(len(queries), k)
    partial = embeddings.map_batches(block_top_k, batch_format="pyarrow", batch_size=batch_rows,
                                     fn_kwargs=dict(queries=queries, k=k, taken=frozenset(taken)))
    for rows in partial.iter_batches(batch_format="pyarrow", batch_size=None):
        result.fold(rows)
    return result.ids, result.similarities, result.candidates
