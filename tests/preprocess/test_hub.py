"""Hub datasets (hf://datasets/...), datasets save_to_disk folders and Parquet exports as pre-processing input.

The hub is never reached: each dataset is laid out in a huggingface_hub cache in tmp_path as
huggingface_hub writes it (blobs, snapshot files linking to them, refs/<branch> holding the commit), and the
real resolution code (snapshot_download, the README's configs, the default layouts) runs against it. Records
are read with the reader's record-level functions and parsed as the job's batches parse them; no Ray.
"""

import gzip
import hashlib
import io
import json
import os
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants

from synpref.preprocess.batch import parse_lines
from synpref.preprocess.hub import hub_dataset_files, parse_hub_uri
from synpref.preprocess.readers import (arrow_stream_blocks, find_record_files, json_lines_blocks,
                                        parquet_rows_as_lines)
from synpref.record.schema import KEPT
from synpref.runner.errors import BadConfig

LIMITS = {"max_chars": 200_000, "max_messages": 256, "max_line_bytes": 4_000_000}
COMMIT = "5e1f" * 10


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def trl_rows(questions):
    return [{"chosen": [user(q), bot(f"good {q}")], "rejected": [user(q), bot(f"bad {q}")]} for q in questions]


def rated_rows(questions):
    return [{"prompt": q, "completions": [{"response": f"best {q}", "overall_score": 9.0},
                                          {"response": f"worse {q}", "overall_score": 5.0},
                                          {"response": f"worst {q}", "overall_score": 1.0}]} for q in questions]


def parquet_bytes(rows):
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def jsonl_bytes(rows):
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def readme(header: str) -> bytes:
    return f"---\n{header.strip()}\n---\n# A dataset card\n".encode()


def put_in_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], *, ref: str = "main") -> Path:
    """The layout huggingface_hub gives a downloaded dataset: blobs named by content hash, the snapshot's
    files symlinks to them, refs/<ref> holding the commit. Returns the snapshot folder."""
    repo = cache / ("datasets--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    for name, content in files.items():
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(COMMIT)
    return snapshot


def parsed(files):
    """The pair rows the job's batches make of these files' records (read as the Ray datasources read them)."""
    lines, records = [], []
    for file in map(str, files):
        if file.endswith(".parquet"):
            table = pq.read_table(file)
            blocks = [parquet_rows_as_lines(table.append_column("path", pa.array([file] * table.num_rows)))]
        else:
            opener = gzip.open if file.endswith(".gz") else open
            with opener(file, "rb") as f:
                read = arrow_stream_blocks if file.endswith(".arrow") else json_lines_blocks
                blocks = list(read(f, file, 3))  # small blocks: the block boundaries are crossed too
        for block in blocks:
            lines += block.column("line").to_pylist()
            records += block.column("source_record").to_pylist()
    return parse_lines(lines, records, limits=LIMITS, binarize="best_vs_all")


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Offline unless a test says otherwise; and an online test meets a closed port, never the internet."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


MIXED_CARD = """
license: mit
configs:
- config_name: pairs
  default: true
  data_files:
  - split: train
    path: pairs/train-*
  - split: test
    path: "pairs/test-*"
- config_name: rated
  data_files: rated/*.jsonl
"""


@pytest.fixture
def mixed(tmp_path):
    """A repo whose README names two configs: Parquet shards per split, and one JSONL file."""
    cache = tmp_path / "hub"
    snapshot = put_in_hub_cache(cache, "org/mixed", {
        "README.md": readme(MIXED_CARD),
        ".gitattributes": b"*.parquet filter=lfs\n",
        "pairs/train-00000-of-00002.parquet": parquet_bytes(trl_rows(["q0", "q1", "q2"])),
        "pairs/train-00001-of-00002.parquet": parquet_bytes(trl_rows(["q3", "q4"])),
        "pairs/test-00000-of-00001.parquet": parquet_bytes(trl_rows(["t0"])),
        "rated/part-0.jsonl": jsonl_bytes(rated_rows(["r0", "r1"])),
        "rated/archive/part-9.jsonl": jsonl_bytes(rated_rows(["old"])),  # `rated/*.jsonl` stays in its folder
    })
    return cache, snapshot


def names(files, snapshot):
    return [str(Path(f).relative_to(snapshot)) for f in files]


def test_the_readme_configs_name_the_files_of_each_config_and_split(mixed):
    cache, snapshot = mixed
    uri = "hf://datasets/org/mixed"
    train = hub_dataset_files(uri, cache_dir=str(cache))  # the default config, its train split
    assert names(train, snapshot) == ["pairs/train-00000-of-00002.parquet", "pairs/train-00001-of-00002.parquet"]
    test = hub_dataset_files(uri, split="test", cache_dir=str(cache))
    assert names(test, snapshot) == ["pairs/test-00000-of-00001.parquet"]
    rated = hub_dataset_files(uri, config="rated", cache_dir=str(cache))
    assert names(rated, snapshot) == ["rated/part-0.jsonl"]

    rows = parsed(train)
    assert [(r["conversation"], r["chosen"], r["rejected"]) for r in rows] == [
        ([user(q)], f"good {q}", f"bad {q}") for q in ["q0", "q1", "q2", "q3", "q4"]]
    assert all(r["status"] == KEPT for r in rows)
    assert rows[0]["source_record"].endswith("pairs/train-00000-of-00002.parquet#row")
    rated_pairs = parsed(rated)  # UltraFeedback-style records, binarized best vs all
    assert [(r["chosen"], r["rejected"]) for r in rated_pairs] == [
        ("best r0", "worse r0"), ("best r0", "worst r0"), ("best r1", "worse r1"), ("best r1", "worst r1")]


def test_a_config_or_split_that_is_not_there_names_the_ones_that_are(mixed):
    cache, _ = mixed
    with pytest.raises(BadConfig) as error:
        hub_dataset_files("hf://datasets/org/mixed", config="sft", cache_dir=str(cache))
    assert ("data.input=hf://datasets/org/mixed: there is no config 'sft'; choose one of pairs, rated"
            in str(error.value))
    with pytest.raises(BadConfig) as error:
        hub_dataset_files("hf://datasets/org/mixed", split="validation", cache_dir=str(cache))
    assert "config pairs has no split 'validation'; its splits: test, train" in str(error.value)


@pytest.mark.parametrize("uri, config, split, expected", [
    # data/<split>-xxxxx-of-xxxxx, as push_to_hub writes: train unless another split is named
    ("hf://datasets/org/shards", None, None, ["data/train-00000-of-00002.parquet",
                                              "data/train-00001-of-00002.parquet"]),
    ("hf://datasets/org/shards", None, "test", ["data/test-00000-of-00001.parquet"]),
    # folders of JSONL per subset (HH-RLHF): every subset's train file, or one subset as config or path
    ("hf://datasets/org/hh", None, None, ["harmless-base/train.jsonl.gz", "helpful-base/train.jsonl.gz"]),
    ("hf://datasets/org/hh", "helpful-base", None, ["helpful-base/train.jsonl.gz"]),
    ("hf://datasets/org/hh/harmless-base", None, "test", ["harmless-base/test.jsonl.gz"]),
    ("hf://datasets/org/hh/*/test.jsonl.gz", None, None, ["harmless-base/test.jsonl.gz"]),
    # the parquet-conversion branch: <config>/<split>/0000.parquet
    ("hf://datasets/org/conv@refs%2Fconvert%2Fparquet", "default", None, ["default/train/0000.parquet",
                                                                        "default/train/0001.parquet"]),
    ("hf://datasets/org/conv@~parquet/default", None, "validation", ["default/validation/0000.parquet"]),
])
def test_without_readme_configs_the_hub_layouts_name_the_files(tmp_path, uri, config, split, expected):
    cache = tmp_path / "hub"
    snapshots = {
        "org/shards": put_in_hub_cache(cache, "org/shards", {
            "README.md": readme("license: mit"),
            "data/train-00000-of-00002.parquet": parquet_bytes(trl_rows(["a"])),
            "data/train-00001-of-00002.parquet": parquet_bytes(trl_rows(["b"])),
            "data/test-00000-of-00001.parquet": parquet_bytes(trl_rows(["c"]))}),
        "org/hh": put_in_hub_cache(cache, "org/hh", {  # no README at all
            "harmless-base/train.jsonl.gz": gzip.compress(jsonl_bytes([{"chosen": "\n\nHuman: h\n\nAssistant: y",
                                                                        "rejected": "\n\nHuman: h\n\nAssistant: n"}])),
            "harmless-base/test.jsonl.gz": gzip.compress(jsonl_bytes([])),
            "helpful-base/train.jsonl.gz": gzip.compress(jsonl_bytes([])),
            "assets/overview.png": b"\x89PNG"}),
        "org/conv": put_in_hub_cache(cache, "org/conv", {
            "default/train/0000.parquet": parquet_bytes(trl_rows(["a"])),
            "default/train/0001.parquet": parquet_bytes(trl_rows(["b"])),
            "default/validation/0000.parquet": parquet_bytes(trl_rows(["c"]))}, ref="refs/convert/parquet"),
    }
    repo_id = parse_hub_uri(uri)[0]
    files = hub_dataset_files(uri, config=config, split=split, cache_dir=str(cache))
    assert names(files, snapshots[repo_id]) == expected
    assert all(row["status"] == KEPT for row in parsed(files))


def test_several_splits_and_no_train_split_ask_for_one(tmp_path):
    cache = tmp_path / "hub"
    put_in_hub_cache(cache, "org/uf", {  # UltraFeedback binarized: train_prefs, test_prefs, train_sft, ...
        "data/train_prefs-00000-of-00001.parquet": parquet_bytes(trl_rows(["a"])),
        "data/test_prefs-00000-of-00001.parquet": parquet_bytes(trl_rows(["b"]))})
    with pytest.raises(BadConfig, match="has the splits test_prefs, train_prefs: choose one with data.hub.split="):
        hub_dataset_files("hf://datasets/org/uf", cache_dir=str(cache))
    [file] = hub_dataset_files("hf://datasets/org/uf", split="train_prefs", cache_dir=str(cache))
    assert file.endswith("data/train_prefs-00000-of-00001.parquet")


def test_offline_a_dataset_not_in_the_cache_is_named_with_how_to_pass_a_local_copy(tmp_path):
    with pytest.raises(BadConfig) as error:
        hub_dataset_files("hf://datasets/Skywork/Skywork-Reward-Preference-80K-v0.2@v0.2", cache_dir=str(tmp_path))
    message = str(error.value)
    assert "data.input=hf://datasets/Skywork/Skywork-Reward-Preference-80K-v0.2@v0.2: cannot get hub dataset " \
           "Skywork/Skywork-Reward-Preference-80K-v0.2: offline (HF_HUB_OFFLINE=1)" in message
    assert ("hf download --repo-type dataset Skywork/Skywork-Reward-Preference-80K-v0.2 --revision v0.2 "
            "--local-dir DIR") in message
    assert "set data.input=DIR" in message and str(tmp_path) in message


def test_offline_the_listing_an_online_run_cached_decides_and_missing_files_are_named(tmp_path):
    # An online snapshot_download keeps the repo's listing (trees/<commit>.json, in the format its module
    # documents) and downloads only the chosen files: here train was fetched, test never was.
    cache = tmp_path / "hub"
    snapshot = put_in_hub_cache(cache, "org/listed", {
        "README.md": readme("license: mit"),
        "data/train-00000-of-00001.parquet": parquet_bytes(trl_rows(["a"]))})
    listed = ["README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"]
    trees = snapshot.parent.parent / "trees" / f"{COMMIT}.json"
    trees.parent.mkdir()
    trees.write_text(json.dumps({"format_version": 1, "files": {n: {"size": 1, "blob_id": "0" * 40} for n in listed}}))

    [train] = hub_dataset_files("hf://datasets/org/listed", cache_dir=str(cache))
    assert train == str(snapshot / "data/train-00000-of-00001.parquet")
    with pytest.raises(BadConfig) as error:  # the listing knows the test split; the cache does not hold it
        hub_dataset_files("hf://datasets/org/listed", split="test", cache_dir=str(cache))
    assert "cannot get hub dataset org/listed: offline (HF_HUB_OFFLINE=1)" in str(error.value)
    assert "hf download --repo-type dataset org/listed --local-dir DIR" in str(error.value)


def test_online_an_unreachable_hub_falls_back_to_the_cache_and_otherwise_says_so(mixed, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    cache, snapshot = mixed
    started = time.monotonic()
    files = hub_dataset_files("hf://datasets/org/mixed", split="test", cache_dir=str(cache))
    assert names(files, snapshot) == ["pairs/test-00000-of-00001.parquet"]
    assert time.monotonic() - started < 10  # once the hub is found unreachable it is not asked again (and retried)
    with pytest.raises(BadConfig, match="cannot get hub dataset org/absent: the hub could not be reached"):
        hub_dataset_files("hf://datasets/org/absent", cache_dir=str(cache))


def test_uris_that_are_not_hub_datasets_are_refused_with_the_shape():
    for uri in ("hf://org/name", "hf://datasets/name-without-org", "hf://models/org/name"):
        with pytest.raises(BadConfig, match=r"a hub dataset is named hf://datasets/<org>/<name>\[@<revision>\]"):
            parse_hub_uri(uri)


def test_find_record_files_takes_hub_uris_and_local_copies_of_repos_with_the_same_keys(mixed, monkeypatch):
    cache, snapshot = mixed
    monkeypatch.setenv("SYNPREF_CACHE", str(cache.parent))  # the hub cache is $SYNPREF_CACHE/hub
    from_hub = find_record_files("hf://datasets/org/mixed", hub={"config": "rated", "split": None})
    assert names(from_hub, snapshot) == ["rated/part-0.jsonl"]
    # `hf download --local-dir DIR`: the repo's files in DIR (the snapshot's links, resolved, stand in for it)
    copy = cache.parent / "copy"
    for file in snapshot.rglob("*"):
        if file.is_file():
            (copy / file.relative_to(snapshot)).parent.mkdir(parents=True, exist_ok=True)
            (copy / file.relative_to(snapshot)).write_bytes(file.read_bytes())
    local = find_record_files([str(copy)], hub={"config": None, "split": "test"})
    assert local == [str(copy / "pairs/test-00000-of-00001.parquet")]


def test_save_to_disk_folders_are_read_as_records_of_their_own_formats(tmp_path):
    pairs = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(trl_rows(["q0", "q1", "q2", "q3"])),
        "test": datasets.Dataset.from_list([{"context": [user("h0")], "response1": "meh", "response2": "great",
                                             "overall_preference": 2}]),  # HelpSteer3: response2 preferred
    })
    pairs.save_to_disk(str(tmp_path / "pairs"), num_shards={"train": 2, "test": 1})
    rated = datasets.Dataset.from_list(rated_rows(["r0"]))
    rated.save_to_disk(str(tmp_path / "rated"))
    # a .map() after load_from_disk leaves a cache-*.arrow beside the data: not part of the saved dataset
    datasets.load_from_disk(str(tmp_path / "rated")).map(lambda row: {"prompt": "changed"})
    assert any(p.name.startswith("cache-") for p in (tmp_path / "rated").iterdir())

    files = find_record_files([str(tmp_path / "pairs"), str(tmp_path / "rated")])
    assert all(f.endswith(".arrow") and "/data-" in f for f in files)
    assert sum("/pairs/train/" in f for f in files) > 1  # several shards
    rows = parsed(files)
    assert [(r["conversation"], r["chosen"], r["rejected"]) for r in rows if "/pairs/train/" in r["source_record"]] == [
        ([user(q)], f"good {q}", f"bad {q}") for q in ["q0", "q1", "q2", "q3"]]
    [helpsteer] = [r for r in rows if "/pairs/test/" in r["source_record"]]
    assert (helpsteer["chosen"], helpsteer["rejected"]) == ("great", "meh")
    assert [(r["chosen"], r["rejected"]) for r in rows if "/rated/" in r["source_record"]] == [
        ("best r0", "worse r0"), ("best r0", "worst r0")]
    assert all(r["status"] == KEPT for r in rows)
    train_records = sorted(r["source_record"].rsplit("#", 1)[1] for r in rows if "/pairs/train/" in r["source_record"])
    assert len(train_records) == 4 and all(n.isdigit() for n in train_records)  # "path#<row>"


def test_a_parquet_export_is_read_through_the_parquet_path(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    datasets.Dataset.from_list(trl_rows(["q0", "q1"])).to_parquet(str(export / "train.parquet"))
    datasets.Dataset.from_list(rated_rows(["r0"])).to_parquet(str(export / "rated.parquet"))
    files = find_record_files(str(export))
    assert [Path(f).name for f in files] == ["rated.parquet", "train.parquet"]
    rows = parsed(files)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("best r0", "worse r0"), ("best r0", "worst r0"), ("good q0", "bad q0"), ("good q1", "bad q1")]
    assert all(r["status"] == KEPT for r in rows)
