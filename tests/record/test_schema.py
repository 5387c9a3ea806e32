"""The record's table conversions (synpref.record.schema)."""

import pyarrow as pa

from synpref.record.ops import flip
from synpref.record.schema import PAIR_SCHEMA, map_rows, new_pair, to_table


def pairs(n: int) -> pa.Table:
    return to_table([new_pair([{"role": "user", "content": f"q{i}"}], f"a{i}", f"b{i}", source="t",
                              source_record=f"t:{i}") for i in range(n)])


def test_map_rows_by_slices_equals_one_pass_and_keeps_the_order():
    batch = pairs(10)
    # a row function that adds rows (as the keep rule's flips do), so slices give outputs of other sizes
    grow = lambda rows: [r for row in rows for r in ([row, flip(dict(row), stage="t", reason="x")]
                                                     if int(row["source_record"][2:]) % 3 == 0 else [row])]
    once = to_table(grow(batch.to_pylist()))
    for rows_per_slice in (1, 3, 10, 64):
        assert map_rows(batch, grow, rows_per_slice=rows_per_slice).equals(once)
    assert once.num_rows == 14


def test_map_rows_calls_the_row_function_a_slice_at_a_time():
    sizes = []
    map_rows(pairs(10), lambda rows: sizes.append(len(rows)) or rows, rows_per_slice=4)
    assert sizes == [4, 4, 2]


def test_map_rows_of_an_empty_batch_is_an_empty_pair_table():
    out = map_rows(pairs(0), list)
    assert out.num_rows == 0 and out.schema == PAIR_SCHEMA
