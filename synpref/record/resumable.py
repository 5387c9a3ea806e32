"""A job's pairs write that a killed run continues instead of starting again: Ray Data's checkpointing,
keyed by pair_id.

While a stream runs, Ray Data records the pair_ids of every block it has written (output/_checkpoint,
with a two-phase commit: a file written but not yet recorded is deleted on the next run and redone).
A re-run with the same settings filters those pairs out at the read and writes only the rest. The
checkpointed pass carries the kept pairs, whose pair_ids are unique once preprocess has deduplicated
them; rows not kept (a dropped duplicate shares its twin's pair_id) need no work, so they are copied
afterwards in one pass, which a re-run replaces whole. A run with other settings starts from nothing.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.fs as pafs

from synpref.record import storage
from synpref.record.schema import KEPT, map_rows

IN_PROGRESS = "_IN_PROGRESS"
CHECKPOINTS = "_checkpoint"
PASSED_PREFIX = "passed"  # file names of the rows copied without work


def kept_only(batch: pa.Table, *, kept: bool = True) -> pa.Table:
    """The batch's kept rows (kept=False: the others). A folder of one status carries no status column."""
    if "status" not in batch.column_names:
        return batch if kept else batch.slice(0, 0)
    is_kept = [(s or KEPT) == KEPT for s in batch["status"].to_pylist()]
    return batch.filter(pa.array([k == kept for k in is_kept], pa.bool_()))


def as_pairs(batch: pa.Table) -> pa.Table:
    """Rows copied as they are, in the pair schema the worked rows have (one schema per folder)."""
    return map_rows(batch, list)


def resuming(output: str, fingerprint: str) -> bool:
    """True when `output` holds an unfinished run of these settings; otherwise clear what another run
    left and say that this one has started."""
    progress = storage.join(output, IN_PROGRESS)
    if storage.exists(progress) and storage.read_json(progress).get("fingerprint") == fingerprint:
        return True
    storage.delete_dir(storage.join(output, CHECKPOINTS))
    storage.write_json(progress, {"fingerprint": fingerprint})
    return False


def write_resumable(read: Callable, work: Callable, path: str, *, output: str, fingerprint: str,
                    rows_per_block: int) -> int | None:
    """Write work(read() kept rows) + read() other rows to <path>/status=<status>/, resuming a killed
    run of the same fingerprint. The kept rows go to `work` in blocks of at most `rows_per_block`: a
    block is what is recorded as done, so a killed run loses at most the blocks in flight. `read()`
    builds the input Dataset (called after the checkpoint config is set, as a Dataset keeps the
    DataContext it was made in). Returns the number of pairs a killed run had finished, or None when
    this run started from nothing."""
    import ray
    from ray.data.checkpoint import CheckpointConfig
    from ray.data.datasource import FilenameProvider

    resumed = resuming(output, fingerprint)
    if not resumed:
        storage.delete_dir(path)
    finished = committed_pairs(storage.join(output, CHECKPOINTS)) if resumed else None
    context = ray.data.DataContext.get_current()
    context.checkpoint_config = CheckpointConfig(id_column="pair_id", checkpoint_path=storage.join(output, CHECKPOINTS),
                                                 delete_checkpoint_on_success=True)
    try:
        kept = read().map_batches(kept_only, batch_format="pyarrow").repartition(target_num_rows_per_block=rows_per_block)
        work(kept).write_parquet(path, partition_cols=["status"])
    finally:
        context.checkpoint_config = None
    delete_files(path, prefix=PASSED_PREFIX)
    read().map_batches(kept_only, batch_format="pyarrow", fn_kwargs=dict(kept=False)).map_batches(
        as_pairs, batch_format="pyarrow").write_parquet(
        path, partition_cols=["status"], filename_provider=FilenameProvider(PASSED_PREFIX, "parquet"))
    fs, progress = storage.filesystem(storage.join(output, IN_PROGRESS))
    fs.delete_file(progress)
    return finished


def committed_pairs(checkpoints: str) -> int:
    """Pair ids Ray Data has recorded as written (its pending records are not counted: they are redone)."""
    import pyarrow.parquet as pq

    fs, root = storage.filesystem(checkpoints)
    files = [i.path for i in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
             if i.type == pafs.FileType.File and i.path.endswith(".parquet") and ".pending" not in i.base_name]
    return sum(pq.ParquetFile(fs.open_input_file(f)).metadata.num_rows for f in files)


def delete_files(folder: str, *, prefix: str) -> None:
    fs, root = storage.filesystem(folder)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.startswith(prefix):
            fs.delete_file(info.path)
