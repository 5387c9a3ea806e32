import json

import pytest

from synpref.demo.pool import BROKEN_ROWS
from synpref.preprocess.formats import Malformed, decode_line, parse_record
from synpref.record.schema import DROPPED, KEPT, PAIR_SCHEMA, pair_id, to_table

LIMITS = {"max_chars": 200_000, "max_messages": 256, "max_line_bytes": 4_000_000}


def parse(record, binarize="best_vs_all"):
    return parse_record(record, source="s", source_record="s:1", limits=LIMITS, binarize=binarize)


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def test_trl_conversational_implicit_prompt():
    [row] = parse({"chosen": [user("q"), bot("a")], "rejected": [user("q"), bot("b")]})
    assert row["conversation"] == [user("q")] and row["chosen"] == "a" and row["rejected"] == "b"
    assert row["status"] == KEPT and row["pair_id"] == pair_id([user("q")], "a", "b")


def test_trl_conversational_explicit_prompt_multi_turn():
    prompt = [{"role": "system", "content": "be brief"}, user("q1"), bot("a1"), user("q2")]
    [row] = parse({"prompt": prompt, "chosen": [bot("good")], "rejected": [bot("bad")]})
    assert row["conversation"] == prompt and (row["chosen"], row["rejected"]) == ("good", "bad")


def test_plain_strings_and_sharegpt_roles():
    [row] = parse({"prompt": "q", "chosen": "a", "rejected": "b"})
    assert row["conversation"] == [user("q")]
    [row] = parse({"prompt": [{"from": "human", "value": "q"}], "chosen": "a", "rejected": "b"})
    assert row["conversation"] == [user("q")]


def test_anthropic_hh_transcript():
    [row] = parse({"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
                   "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 5"})
    assert row["conversation"] == [user("hi"), bot("hello"), user("2+2?")]
    assert (row["chosen"], row["rejected"]) == ("4", "5")


@pytest.mark.parametrize("strategy,expected", [
    ("best_vs_all", [("a", "b", 2.0), ("a", "c", 4.0)]),
    ("best_vs_worst", [("a", "c", 4.0)]),
    ("all_pairs", [("a", "b", 2.0), ("a", "c", 4.0), ("b", "c", 2.0)]),
])
def test_ultrafeedback_binarization(strategy, expected):
    record = {"instruction": "q", "completions": [{"response": "b", "overall_score": 7},
                                                  {"response": "a", "overall_score": 9},
                                                  {"response": "c", "overall_score": 5}]}
    rows = parse(record, strategy)
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in rows] == expected
    assert [r["record_pair_index"] for r in rows] == list(range(len(expected)))


def test_ties_become_dropped_rows_and_keep_the_rest():
    rows = parse({"prompt": "q", "responses": ["x", "y", "z"], "scores": [3, 3, 1]})
    assert [(r["chosen"], r["rejected"], r["status"], r["reason"]) for r in rows] == [
        ("x", "y", DROPPED, "tied_scores"), ("x", "z", KEPT, None)]


def test_helpsteer3_sign_convention():
    [row] = parse({"context": [user("q")], "response1": "r1", "response2": "r2", "overall_preference": -2})
    assert (row["chosen"], row["rejected"], row["margin"]) == ("r1", "r2", 2.0)
    [tie] = parse({"context": "q", "response1": "r1", "response2": "r2", "overall_preference": 0})
    assert tie["status"] == DROPPED and tie["reason"] == "tied_scores"


def test_missing_response_is_a_row_for_the_filter_not_a_quarantine():
    [row] = parse({"prompt": "q", "chosen": "  ", "rejected": "b"})
    assert row["chosen"] is None and row["status"] == KEPT and row["pair_id"] is None


@pytest.mark.parametrize("line,reason", BROKEN_ROWS, ids=[f"{i}-{r}" for i, (_, r) in enumerate(BROKEN_ROWS)])
def test_every_broken_row_gets_its_reason(line, reason):
    with pytest.raises(Malformed) as err:
        parse(decode_line(line, LIMITS["max_line_bytes"]))
    assert err.value.reason == reason


def test_broken_row_catalogue_has_twenty_kinds_or_more():
    assert len({reason for _, reason in BROKEN_ROWS}) >= 20


def test_rows_fit_the_schema():
    rows = parse({"prompt": "q", "chosen": "a", "rejected": "b"}) + parse(json.loads('{"prompt": "é", "chosen": "ü", "rejected": "ß"}'))
    table = to_table(rows)
    assert table.schema == PAIR_SCHEMA and table.num_rows == 2
