"""Local paths and storage URIs (s3://, gs://, file://) through pyarrow filesystems."""

from __future__ import annotations

import fnmatch
import json
import os

import pyarrow.fs as pafs


def as_list(value) -> list[str]:
    """A config value that is one path or a list of paths, as a list of strings."""
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def is_uri(path: str) -> bool:
    return "://" in str(path)


def absolute(path: str) -> str:
    """Ray workers do not share the driver's working directory: make local paths absolute."""
    return str(path) if is_uri(path) else os.path.abspath(os.path.expanduser(str(path)))


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(absolute(path))


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def exists(path: str) -> bool:
    fs, p = filesystem(path)
    return fs.get_file_info(p).type != pafs.FileType.NotFound


def write_text(path: str, text: str) -> None:
    """Write the whole file or nothing: a run killed while it writes a completion marker must not leave
    an empty one that its re-run then cannot read. A local file is written under a hidden name beside
    it and renamed into place; an object store publishes an object only once its upload completes."""
    fs, p = filesystem(path)
    folder, name = p.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(p) as f:
            f.write(text.encode("utf-8"))
        return
    partial = f"{folder}/.{name}.{os.getpid()}.partial"
    try:
        with fs.open_output_stream(partial) as f:
            f.write(text.encode("utf-8"))
        fs.move(partial, p)  # rename(2): atomic within a filesystem
    except BaseException:
        if fs.get_file_info(partial).type != pafs.FileType.NotFound:
            fs.delete_file(partial)
        raise


def read_text(path: str) -> str:
    fs, p = filesystem(path)
    with fs.open_input_stream(p) as f:
        return f.read().decode("utf-8")


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str):
    return json.loads(read_text(path))


def delete_dir(path: str) -> None:
    fs, p = filesystem(path)
    if fs.get_file_info(p).type == pafs.FileType.Directory:
        fs.delete_dir(p)


def expand_files(inputs) -> list[str]:
    """Files named by `inputs` (one string or a list): files as given, folders searched deep,
    globs (*, ?) matched against their folder. Hidden files and `_`-prefixed markers are skipped."""
    if isinstance(inputs, str):
        inputs = [inputs]
    files = []
    for item in inputs:
        item = absolute(item)
        prefix = item.split("://", 1)[0] + "://" if is_uri(item) else ""
        pattern = None
        if any(ch in item.rsplit("/", 1)[-1] for ch in "*?["):
            item, pattern = item.rsplit("/", 1)
        fs, p = filesystem(item)
        info = fs.get_file_info(p)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"data.input: {item} does not exist")
        if info.type == pafs.FileType.File:
            found = [p]
        else:
            entries = fs.get_file_info(pafs.FileSelector(p, recursive=pattern is None))
            found = sorted(e.path for e in entries if e.type == pafs.FileType.File)
        for f in found:
            name = f.rsplit("/", 1)[-1]
            if name.startswith((".", "_")) or (pattern and not fnmatch.fnmatch(name, pattern)):
                continue
            files.append(prefix + f if prefix and not f.startswith(prefix) else f)
    return files
