"""Reading and writing pairs folders (synpref.record.pairs_io): status restored however the folder is named."""

import pyarrow.parquet as pq

from synpref.record.pairs_io import kept_path, read_pairs, read_table, write_pairs
from synpref.record.schema import new_pair, to_table


def rows():
    a = new_pair([{"role": "user", "content": "q1"}], "a", "b", source="t", source_record="t:1")
    b = new_pair([{"role": "user", "content": "q2"}], "c", "d", source="t", source_record="t:2")
    b.update(status="dropped", stage="verify", reason="undecidable")
    return [a, b]


def test_round_trip_restores_status_from_the_partition(tmp_path):
    a, b = rows()
    write_pairs([a, b], str(tmp_path / "set"))
    assert [r["pair_id"] for r in read_pairs(str(tmp_path / "set"))] == [a["pair_id"]]
    every = read_pairs(str(tmp_path / "set"), status=None)
    assert sorted((r["pair_id"], r["status"]) for r in every) == sorted([(a["pair_id"], "kept"),
                                                                         (b["pair_id"], "dropped")])
    # the status=dropped folder read on its own still says dropped
    assert [r["status"] for r in read_pairs(str(tmp_path / "set" / "status=dropped"), status=None)] == ["dropped"]
    assert kept_path(str(tmp_path / "set")).endswith("status=kept")


def test_plain_parquet_and_missing_columns(tmp_path):
    a, _ = rows()
    table = to_table([a]).select(["pair_id", "conversation", "chosen", "rejected"])
    pq.write_table(table, tmp_path / "plain.parquet")
    out = read_pairs(str(tmp_path / "plain.parquet"))
    assert out[0]["status"] == "kept" and out[0]["rm_scores"] is None and out[0]["pair_id"] == a["pair_id"]
    assert read_table(str(tmp_path / "plain.parquet"), columns=["pair_id"]).column_names == ["pair_id", "status"]


def test_empty_set(tmp_path):
    write_pairs([], str(tmp_path / "empty"))
    assert read_pairs(str(tmp_path / "empty")) == []
