"""Stream input records into Ray Data, one raw record per row, never parsing in the reader.

JSONL (and .json arrays, optionally .gz) is read line by line as bytes, so a bad byte or a broken line
becomes one quarantined row downstream instead of failing the file. Parquet rows are re-encoded as
JSON lines so both kinds meet the same parser. Output columns: `line` (bytes) and `source_record`
("path:line" or "path#row").
"""

from __future__ import annotations

import json
from typing import Iterator

import pyarrow as pa
from ray.data.datasource import FileBasedDatasource

from synpref.record.storage import expand_files

JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
RAW_SCHEMA = pa.schema([("line", pa.binary()), ("source_record", pa.string())])


class JsonLinesDatasource(FileBasedDatasource):
    def __init__(self, paths, lines_per_block: int = 8192, **kwargs):
        super().__init__(paths, **kwargs)
        self.lines_per_block = lines_per_block

    def _read_stream(self, f: "pa.NativeFile", path: str) -> Iterator[pa.Table]:
        lines, numbers, number, pending = [], [], 0, b""
        first_chunk = True
        while True:
            chunk = f.read(1 << 22)
            if first_chunk and chunk.lstrip()[:1] == b"[":
                # a .json file holding one array: small enough to load whole by convention
                yield from self._array_blocks(chunk + f.read(), path)
                return
            first_chunk = False
            if not chunk:
                break
            parts = (pending + chunk).split(b"\n")
            pending = parts.pop()
            for part in parts:
                number += 1
                lines.append(part.rstrip(b"\r"))
                numbers.append(number)
            if len(lines) >= self.lines_per_block:
                yield self._block(lines, numbers, path)
                lines, numbers = [], []
        if pending.strip():
            lines.append(pending.rstrip(b"\r"))
            numbers.append(number + 1)
        if lines:
            yield self._block(lines, numbers, path)

    def _array_blocks(self, data: bytes, path: str) -> Iterator[pa.Table]:
        try:
            items = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            yield self._block([data[:1 << 16]], ["whole file (not one JSON array)"], path)
            return
        encoded = [json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass") for item in items]
        for start in range(0, len(encoded), self.lines_per_block):
            chunk = encoded[start:start + self.lines_per_block]
            yield self._block(chunk, [f"item {start + i}" for i in range(len(chunk))], path)

    @staticmethod
    def _block(lines, numbers, path) -> pa.Table:
        return pa.table({"line": lines, "source_record": [f"{path}:{n}" for n in numbers]}, schema=RAW_SCHEMA)


def parquet_rows_as_lines(batch: pa.Table) -> pa.Table:
    paths = batch.column("path").to_pylist()
    rows = batch.drop_columns(["path"]).to_pylist()
    lines = [json.dumps(row, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass") for row in rows]
    return pa.table({"line": lines, "source_record": [f"{p}#row" for p in paths]}, schema=RAW_SCHEMA)


def read_raw_records(inputs, *, lines_per_block: int = 8192):
    """A Ray Dataset of raw records from files, folders or globs (local paths or URIs)."""
    import ray.data

    files = expand_files(inputs)
    json_files = [f for f in files if f.endswith(JSON_SUFFIXES)]
    parquet_files = [f for f in files if f.endswith(PARQUET_SUFFIXES)]
    unknown = sorted(set(files) - set(json_files) - set(parquet_files))
    if unknown:
        raise ValueError(f"data.input: cannot read {unknown[:3]}: use .jsonl, .json(.gz) or .parquet files")
    if not files:
        raise FileNotFoundError(f"data.input: no input files in {list(inputs)}")
    parts = []
    if json_files:
        parts.append(ray.data.read_datasource(JsonLinesDatasource(json_files, lines_per_block=lines_per_block)))
    if parquet_files:
        parquet = ray.data.read_parquet(parquet_files, include_paths=True)
        parts.append(parquet.map_batches(parquet_rows_as_lines, batch_format="pyarrow"))
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])
