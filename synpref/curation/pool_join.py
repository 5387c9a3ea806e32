"""Stage 2's pool less D_gold and D_silver, as a Ray Data anti-join on the pair key.

The pool has tens of millions of pairs; D_gold and judge-labelled D_silver can reach millions when
Stage 1 runs long. Neither side is collected anywhere: Ray Data hash-partitions both by the pair's
order-free key (a pair and its flip are one pair) and joins each partition on its own.
"""

from __future__ import annotations

import math

import pyarrow as pa

from synpref.curation.stage1 import is_verified_silver
from synpref.curation.stage2 import silver_row
from synpref.record.ops import pair_key
from synpref.record.pairs_io import kept_path
from synpref.record.schema import map_rows

KEY = "_pair_key"  # the join column, dropped after the join


def with_key(batch: pa.Table) -> pa.Table:
    return batch.append_column(KEY, pa.array([pair_key(r) for r in batch.to_pylist()], pa.string()))


def keys_of(batch: pa.Table) -> pa.Table:
    return pa.table({KEY: pa.array([pair_key(r) for r in batch.to_pylist()], pa.string())})


def verified_silver(batch: pa.Table) -> pa.Table:
    """D_silver's judge-labelled rows (its bootstrap, the pool's own labels, is Stage 2's to decide)."""
    return batch.filter(pa.array([is_verified_silver(r) for r in batch.to_pylist()], pa.bool_()))


def as_silver(batch: pa.Table) -> pa.Table:
    return map_rows(batch, lambda rows: [silver_row(r) for r in rows])


def judged_silver(silver: str):
    import ray

    return ray.data.read_parquet(kept_path(silver)).map_batches(verified_silver, batch_format="pyarrow")


def without_gold_and_silver(pool: str, gold: str, silver: str, *, partition_rows: int):
    """The kept pairs of `pool` that are in neither D_gold nor judge-labelled D_silver (a Dataset)."""
    import ray

    pairs = ray.data.read_parquet(kept_path(pool))
    taken = ray.data.read_parquet(kept_path(gold)).map_batches(keys_of, batch_format="pyarrow").union(
        judged_silver(silver).map_batches(keys_of, batch_format="pyarrow"))
    partitions = max(1, math.ceil(pairs.count() / partition_rows))
    return pairs.map_batches(with_key, batch_format="pyarrow").join(
        taken, join_type="left_anti", on=(KEY,), num_partitions=partitions).drop_columns([KEY])
