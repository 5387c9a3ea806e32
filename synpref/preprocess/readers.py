"""Stream input records into Ray Data, one raw record per row, never parsing in the reader.

JSONL (and .json arrays, optionally .gz) is read line by line as bytes, so a bad byte or a broken line
becomes one quarantined row downstream instead of failing the file. Parquet rows, and the rows of the
Arrow files a `datasets` save_to_disk folder holds, are re-encoded as JSON lines so every kind meets the
same parser. Output columns: `line` (bytes) and `source_record` ("path:line", "path#row" for Parquet,
"path#<row number>" for Arrow).

Inputs (`find_record_files`): files, folders, globs (local paths or storage URIs), hub datasets
(`hf://datasets/<org>/<name>...`) and local copies of hub dataset repos (synpref.preprocess.hub), and
save_to_disk folders (a Dataset's or a DatasetDict's).
"""

from __future__ import annotations

import json
from typing import Iterator, Mapping

import pyarrow as pa
from ray.data.datasource import FileBasedDatasource

from synpref.preprocess.hub import copy_files, hub_dataset_files, is_hub_copy, is_hub_uri
from synpref.record.storage import as_list, expand_files, read_json

JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow",)
SAVED_DATASET_METADATA = ("state.json", "dataset_info.json")  # beside a save_to_disk folder's .arrow files
RAW_SCHEMA = pa.schema([("line", pa.binary()), ("source_record", pa.string())])
# A read task's worker exits when the task ends. Its heap peaks at a few hundred MB (the blocks it
# buffers), does not shrink afterwards, and Ray would run later tasks of any kind in that worker
# (the Write, mostly), which would then hold the read's heap for the rest of the job.
READ_TASK_ARGS = {"max_calls": 1}


def raw_block(lines: list[bytes], source_records: list[str]) -> pa.Table:
    return pa.table({"line": lines, "source_record": source_records}, schema=RAW_SCHEMA)


def rows_as_lines(rows: list[dict]) -> list[bytes]:
    return [json.dumps(row, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass") for row in rows]


def json_lines_blocks(f, path: str, lines_per_block: int) -> Iterator[pa.Table]:
    """The lines of a JSONL file (or the items of a file holding one JSON array) as raw blocks."""
    lines, numbers, number, pending = [], [], 0, b""
    first_chunk = True
    while True:
        chunk = f.read(1 << 22)
        if first_chunk and chunk.lstrip()[:1] == b"[":
            # a .json file holding one array: small enough to load whole by convention
            yield from json_array_blocks(chunk + f.read(), path, lines_per_block)
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
        if len(lines) >= lines_per_block:
            yield raw_block(lines, [f"{path}:{n}" for n in numbers])
            lines, numbers = [], []
    if pending.strip():
        lines.append(pending.rstrip(b"\r"))
        numbers.append(number + 1)
    if lines:
        yield raw_block(lines, [f"{path}:{n}" for n in numbers])


def json_array_blocks(data: bytes, path: str, lines_per_block: int) -> Iterator[pa.Table]:
    try:
        items = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        yield raw_block([data[:1 << 16]], [f"{path}:whole file (not one JSON array)"])
        return
    encoded = rows_as_lines(items)
    for start in range(0, len(encoded), lines_per_block):
        chunk = encoded[start:start + lines_per_block]
        yield raw_block(chunk, [f"{path}:item {start + i}" for i in range(len(chunk))])


def arrow_stream_blocks(f, path: str, lines_per_block: int) -> Iterator[pa.Table]:
    """The rows of an Arrow IPC stream (what datasets' save_to_disk writes), record batch by record batch."""
    lines, records, row = [], [], 0
    for batch in pa.ipc.open_stream(f):
        encoded = rows_as_lines(batch.to_pylist())
        lines += encoded
        records += [f"{path}#{row + i}" for i in range(len(encoded))]
        row += len(encoded)
        if len(lines) >= lines_per_block:
            yield raw_block(lines, records)
            lines, records = [], []
    if lines:
        yield raw_block(lines, records)


class JsonLinesDatasource(FileBasedDatasource):
    def __init__(self, paths, lines_per_block: int = 8192, **kwargs):
        super().__init__(paths, **kwargs)
        self.lines_per_block = lines_per_block

    def _read_stream(self, f: "pa.NativeFile", path: str) -> Iterator[pa.Table]:
        yield from json_lines_blocks(f, path, self.lines_per_block)


class ArrowStreamDatasource(FileBasedDatasource):
    def __init__(self, paths, lines_per_block: int = 8192, **kwargs):
        super().__init__(paths, **kwargs)
        self.lines_per_block = lines_per_block

    def _read_stream(self, f: "pa.NativeFile", path: str) -> Iterator[pa.Table]:
        yield from arrow_stream_blocks(f, path, self.lines_per_block)


def parquet_rows_as_lines(batch: pa.Table) -> pa.Table:
    paths = batch.column("path").to_pylist()
    return raw_block(rows_as_lines(batch.drop_columns(["path"]).to_pylist()), [f"{p}#row" for p in paths])


def saved_dataset_files(files: list[str]) -> list[str]:
    """files with each datasets save_to_disk folder reduced to the Arrow files its state.json lists: its
    metadata is not records, and a .map() after load_from_disk leaves cache-*.arrow files beside them."""
    folder_of = {f: f.rsplit("/", 1)[0] for f in files}
    arrow_folders = {folder_of[f] for f in files if f.endswith(ARROW_SUFFIXES)}
    listed = {folder: {f"{folder}/{entry['filename']}" for entry in read_json(f"{folder}/state.json")["_data_files"]}
              for folder in arrow_folders if f"{folder}/state.json" in folder_of}
    kept = []
    for f in files:
        folder, name = folder_of[f], f.rsplit("/", 1)[-1]
        if f.endswith(ARROW_SUFFIXES) and folder in listed and f not in listed[folder]:
            continue
        if folder in arrow_folders and name in SAVED_DATASET_METADATA:
            continue
        if name == "dataset_dict.json" and any(a.startswith(folder + "/") for a in arrow_folders):
            continue
        kept.append(f)
    return kept


def find_record_files(inputs, *, hub: Mapping | None = None) -> list[str]:
    """Every file to read for `inputs` (one or a list): hub datasets and local copies of hub repos resolved by
    synpref.preprocess.hub (`hub`: its config and split), save_to_disk folders to their Arrow files, other
    files, folders and globs as expand_files finds them. Run on the driver, before any Ray work."""
    options = {"config": (hub or {}).get("config"), "split": (hub or {}).get("split")}
    files = []
    for item in as_list(inputs):
        if is_hub_uri(item):
            files += hub_dataset_files(item, **options)
        elif is_hub_copy(item):
            files += copy_files(item, **options)
        else:
            files += saved_dataset_files(expand_files(item))
    return files


def read_raw_records(inputs, *, lines_per_block: int = 8192, hub: Mapping | None = None):
    """A Ray Dataset of raw records from the inputs find_record_files accepts (or the files it found)."""
    import ray.data

    files = find_record_files(inputs, hub=hub)
    json_files = [f for f in files if f.endswith(JSON_SUFFIXES)]
    parquet_files = [f for f in files if f.endswith(PARQUET_SUFFIXES)]
    arrow_files = [f for f in files if f.endswith(ARROW_SUFFIXES)]
    unknown = sorted(set(files) - set(json_files) - set(parquet_files) - set(arrow_files))
    if unknown:
        raise ValueError(f"data.input: cannot read {unknown[:3]}: use .jsonl, .json(.gz), .parquet files or "
                         "a datasets save_to_disk folder")
    if not files:
        raise FileNotFoundError(f"data.input: no input files in {as_list(inputs)}")
    parts = []
    if json_files:
        parts.append(ray.data.read_datasource(JsonLinesDatasource(json_files, lines_per_block=lines_per_block),
                                              ray_remote_args=READ_TASK_ARGS))
    if parquet_files:
        # no READ_TASK_ARGS: remote args unlike the next map's would stop Ray Data fusing the two
        parquet = ray.data.read_parquet(parquet_files, include_paths=True)
        parts.append(parquet.map_batches(parquet_rows_as_lines, batch_format="pyarrow"))
    if arrow_files:
        parts.append(ray.data.read_datasource(ArrowStreamDatasource(arrow_files, lines_per_block=lines_per_block),
                                              ray_remote_args=READ_TASK_ARGS))
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])
