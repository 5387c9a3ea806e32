"""Reading and writing a folder of pairs (PAIR_SCHEMA Parquet), written once for every stage.

A job writes its pairs as `<output>/pairs/status=kept|dropped|quarantined/` (hive partitions). Hive
partitioning moves `status` out of the files into the folder name, so a reader that opens
`pairs/status=kept` directly, or a Parquet folder written without partitions, would see no status:
`read_pairs` restores it from the path (or kept, when the path names none). The small named sets of
the curation loop (D_gold, D_silver, a retrieval batch) are read into memory with `read_pairs`; the
pool streams through Ray Data, from `kept_path`.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from synpref.record import storage
from synpref.record.schema import KEPT, PAIR_SCHEMA, to_table

_STATUS_IN_PATH = re.compile(r"(?:^|/)status=([a-z]+)/?$")
_STATUS_IN_FILE = re.compile(r"(?:^|/)status=([a-z]+)/[^/]+$")


def kept_path(path: str) -> str:
    """A job's pairs/ folder -> its status=kept part; a plain Parquet folder (or file) is taken whole."""
    kept = storage.join(path, f"status={KEPT}")
    return kept if storage.exists(kept) else path


def pairs_dataset(path: str) -> pads.Dataset:
    """A pairs folder (any status partitions) or a Parquet file/folder as one pyarrow dataset."""
    fs, local = storage.filesystem(storage.absolute(path))
    return pads.dataset(local, filesystem=fs, format="parquet", partitioning="hive")


def _status_of(path: str) -> str:
    found = _STATUS_IN_PATH.search(path.rstrip("/"))
    return found.group(1) if found else KEPT


def read_table(paths, *, status: str | None = KEPT, columns: list[str] | None = None,
               filter: pc.Expression | None = None) -> pa.Table:
    """The rows of one or more pairs folders as one table with a `status` column.

    status=KEPT (the default) reads only kept rows; status=None reads every row. `columns` picks
    PAIR_SCHEMA columns (a folder may lack some: those come back null); `filter` is a pyarrow
    expression over them."""
    wanted = list(columns or PAIR_SCHEMA.names)
    if "status" not in wanted:
        wanted.append("status")
    tables = []
    for path in storage.as_list(paths):
        path = storage.absolute(path)
        if status == KEPT:
            path = kept_path(path)
        dataset = pairs_dataset(path)
        present = [c for c in wanted if c in dataset.schema.names]
        table = dataset.to_table(columns=present, filter=filter)
        if "status" not in table.column_names:
            table = table.append_column("status", pa.array([_status_of(path)] * table.num_rows, pa.string()))
        else:
            table = table.set_column(table.column_names.index("status"), "status", table["status"].cast(pa.string()))
        if status is not None:
            table = table.filter(pc.equal(table["status"], status))
        for name in wanted:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(table.num_rows, PAIR_SCHEMA.field(name).type))
        tables.append(table.select(wanted))
    if not tables:
        return pa.table({name: pa.array([], PAIR_SCHEMA.field(name).type) for name in wanted})
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def file_batches(path: str, columns: list[str], batch_size: int = 65536):
    """(status, batch) over a pairs folder, one file and one batch at a time: `status` is the one its
    folder name gives (None in a folder without status partitions; a `status` column then says it, or
    the rows are kept). Files are opened one by one, not scanned as one dataset: a dataset keeps every
    file's metadata it has read and reads ahead across files, which grew the reader with the pairs."""
    path = storage.absolute(path)
    fs, _ = storage.filesystem(path)
    for file in pairs_dataset(path).files:
        found = _STATUS_IN_FILE.search(file)
        with pq.ParquetFile(file, filesystem=fs) as parquet:
            present = [c for c in columns if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=batch_size, columns=present):
                yield (found.group(1) if found else None), batch


def iter_rows(paths, columns: list[str], batch_size: int = 65536):
    """The rows of pairs folders batch by batch (bounded memory), every status, `status` restored."""
    for path in storage.as_list(paths):
        for status, batch in file_batches(path, columns, batch_size):
            for row in batch.to_pylist():
                row["status"] = str(status or row.get("status") or _status_of(storage.absolute(path)))
                yield row


def read_pairs(paths, *, status: str | None = KEPT, columns: list[str] | None = None,
               filter: pc.Expression | None = None) -> list[dict]:
    """`read_table` as Python rows (dicts of PAIR_SCHEMA columns, `status` always set)."""
    return read_table(paths, status=status, columns=columns, filter=filter).to_pylist()


def write_dataset(dataset, path: str) -> None:
    """A Ray Dataset of pair rows -> <path>/status=<status>/ (what a job writes), replacing what an
    unfinished earlier run left there."""
    storage.delete_dir(path)
    dataset.write_parquet(path, partition_cols=["status"])


def write_pairs(rows: list[dict], path: str) -> None:
    """rows -> <path>/status=<status>/part-0.parquet (PAIR_SCHEMA), replacing what was there."""
    storage.delete_dir(path)
    table = to_table(rows) if rows else PAIR_SCHEMA.empty_table()
    fs, local = storage.filesystem(storage.absolute(path))
    for status in sorted({r["status"] for r in rows}) or [KEPT]:
        part = table.filter(pc.equal(table["status"], status)).drop_columns(["status"])
        fs.create_dir(f"{local}/status={status}", recursive=True)
        pq.write_table(part, f"{local}/status={status}/part-0.parquet", filesystem=fs)
