"""The pair record's operations (synpref.record.ops): decide, flip, key, p, written once for every stage."""

import math

import pytest

from synpref.record.ops import flip, p_of, pair_key, record_decision, sigmoid, with_score
from synpref.record.schema import new_pair, pair_id


def pair(**extra):
    row = new_pair([{"role": "user", "content": "What is 2 + 2?"}], "4.", "5.", source="t", source_record="t:0")
    row.update(extra)
    return row


def test_sigmoid_is_stable_at_the_extremes():
    assert sigmoid(0.0) == 0.5
    assert math.isclose(sigmoid(1.5), 1 / (1 + math.exp(-1.5)), rel_tol=1e-12)
    assert sigmoid(2e6) == 1.0 and sigmoid(-2e6) == 0.0


def test_an_earlier_decision_moves_into_history_once():
    row = pair()
    record_decision(row, stage=None)  # passing kept: nothing to record
    assert (row["status"], row["stage"], row["reason"], row["history"]) == ("kept", None, None, [])
    record_decision(row, stage="score", reason="truncated")
    assert (row["status"], row["stage"], row["reason"], row["history"]) == ("kept", "score", "truncated", [])
    record_decision(row, stage="score", reason="truncated")  # the same decision again: not recorded twice
    assert row["history"] == []
    record_decision(row, stage="stage2", status="dropped", reason="gold_rm_disagrees")
    assert row["history"] == [{"stage": "score", "status": "kept", "reason": "truncated"}]
    assert (row["status"], row["stage"], row["reason"]) == ("dropped", "stage2", "gold_rm_disagrees")


def test_flip_turns_every_field_that_names_a_side():
    votes = [{"judge": "j", "sample": 0, "order": "original", "verdict": "chosen", "rationale": None,
              "position_consistent": True, "logprob_chosen": -0.2, "logprob_rejected": -1.8, "score": 1.6,
              "p_judge": 0.83}]
    row = pair(margin=2.0, judge_label="chosen", judge_votes=votes, judge_score=1.6, stage="stage2",
               status="dropped", reason="gold_rm_disagrees",
               rm_scores=[{"model": "best", "r_chosen": 1.0, "r_rejected": -1.0, "p": 0.88}])
    out = flip(row, stage="stage2", reason="flipped:gold_rm_disagrees")
    assert (out["chosen"], out["rejected"]) == ("5.", "4.")
    assert out["pair_id"] == pair_id(row["conversation"], "5.", "4.") != row["pair_id"]
    assert pair_key(out) == pair_key(row)
    assert out["judge_label"] == "rejected" and out["judge_score"] == -1.6 and out["margin"] is None
    assert out["judge_votes"] == [{**votes[0], "order": "swapped", "verdict": "rejected", "logprob_chosen": -1.8,
                                   "logprob_rejected": -0.2, "score": -1.6, "p_judge": pytest.approx(0.17)}]
    assert out["rm_scores"] == [{"model": "best", "r_chosen": -1.0, "r_rejected": 1.0, "p": pytest.approx(0.12)}]
    assert (out["status"], out["stage"], out["reason"]) == ("kept", "stage2", "flipped:gold_rm_disagrees")
    assert out["history"] == [{"stage": "stage2", "status": "dropped", "reason": "gold_rm_disagrees"}]
    assert row["chosen"] == "4." and row["status"] == "dropped"  # the original row is untouched
    assert flip(flip(row, stage="s", reason="r"), stage="s", reason="r")["rm_scores"][0]["p"] == pytest.approx(0.88)


def test_p_of_and_with_score():
    row = pair(rm_scores=with_score(None, "best", 2.0, 0.5))
    assert p_of(row, "best") == pytest.approx(sigmoid(1.5)) and p_of(row, "gold") is None
    scores = with_score(row["rm_scores"] + [{"model": "gold", "r_chosen": 0.0, "r_rejected": 0.0, "p": 0.5}],
                        "best", 0.0, 1.0)
    assert [s["model"] for s in scores] == ["best", "gold"] and scores[0]["p"] == pytest.approx(sigmoid(-1.0))
