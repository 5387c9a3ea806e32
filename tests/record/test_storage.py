"""synpref.record.storage: a file is written whole or not at all."""

import pytest

from synpref.record import storage


def test_a_write_that_fails_part_way_leaves_the_old_file_and_nothing_else(tmp_path):
    marker = tmp_path / "step" / "_SUCCESS"
    storage.write_json(str(marker), {"fingerprint": "old"})
    with pytest.raises(UnicodeEncodeError):
        storage.write_text(str(marker), "{\"fingerprint\": \"\ud800\"}")  # a lone surrogate: the encode fails mid-write
    assert storage.read_json(str(marker)) == {"fingerprint": "old"}
    assert sorted(p.name for p in marker.parent.iterdir()) == ["_SUCCESS"]


def test_a_write_replaces_the_file_and_leaves_no_partial_file(tmp_path):
    marker = tmp_path / "_SUCCESS"
    storage.write_json(str(marker), {"fingerprint": "old"})
    storage.write_json(str(marker), {"fingerprint": "new"})
    assert storage.read_json(str(marker)) == {"fingerprint": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["_SUCCESS"]
    storage.write_text(f"file://{tmp_path}/uri.txt", "through a URI")  # file:// is pyarrow's local filesystem too
    assert (tmp_path / "uri.txt").read_text() == "through a URI"
