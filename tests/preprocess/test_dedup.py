import numpy as np

from synpref.preprocess.dedup import SeenKeys
from synpref.preprocess.filters import Deduplicate
from synpref.record.schema import new_pair


def test_seen_keys_matches_a_python_set_over_many_batches():
    rng = np.random.default_rng(0)
    seen, reference = SeenKeys(), set()
    for _ in range(300):
        keys = rng.integers(0, 5000, size=rng.integers(1, 200), dtype=np.uint64)  # many repeats
        got = seen.add(keys)
        expected = []
        for k in keys.tolist():
            expected.append(k not in reference)
            reference.add(k)
        assert got.tolist() == expected
    assert len(seen) == len(reference)
    assert seen.nbytes == 8 * len(reference)
    assert len(seen.runs) <= 2 * int(np.log2(len(reference)) + 1)  # merged, not one run per batch


def test_extreme_keys():
    seen = SeenKeys()
    keys = np.array([0, 2**64 - 1, 0, 2**63], dtype=np.uint64)
    assert seen.add(keys).tolist() == [True, True, False, True]
    assert seen.add(keys[::-1]).tolist() == [False, False, False, False]


def test_deduplicate_marks_later_copies_only():
    rows = [new_pair([{"role": "user", "content": "q"}], c, "r", source="s", source_record=f"s:{i}")
            for i, c in enumerate(["a", "b", "a", "a"])]
    Deduplicate(SeenKeys())(rows)
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("kept", None), ("kept", None), ("dropped", "duplicate"), ("dropped", "duplicate")]
