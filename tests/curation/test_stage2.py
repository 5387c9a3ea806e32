"""Stage 2's keep rule without Ray: the rules, the margins, the judges' votes kept, flip recycling."""

import pyarrow as pa
import pytest

from synpref.curation.stage2 import (DROPPED_GOLD, DROPPED_OTHERS, DROPPED_UNSCORED, KEPT_GOLD_BEST, KEPT_GOLD_JUDGES,
                                     apply_keep_rule, decide, unconfident)
from synpref.record.schema import PAIR_SCHEMA
from tests.curation.stage_pairs import pair, scored


@pytest.mark.parametrize("p_best,p_gold,judge,expected", [
    (0.9, 0.9, None, ("kept", KEPT_GOLD_BEST)),
    (0.9, 0.4, "chosen", ("dropped", DROPPED_GOLD)),
    (0.3, 0.8, "chosen", ("kept", KEPT_GOLD_JUDGES)),
    (0.3, 0.8, "rejected", ("dropped", DROPPED_OTHERS)),
    (0.3, 0.8, "tie", ("dropped", DROPPED_OTHERS)),
    (0.55, 0.8, None, ("kept", KEPT_GOLD_BEST)),
    (None, 0.8, "chosen", ("dropped", DROPPED_UNSCORED)),
])
def test_keep_rule(p_best, p_gold, judge, expected):
    row = scored(0, p_best, p_gold)
    assert decide(row, judge, best="best", gold="gold", gold_margin=0.0, best_margin=0.0) == expected


def test_keep_rule_margins_and_unconfident():
    row = scored(0, 0.55, 0.55)
    assert decide(row, None, best="best", gold="gold", gold_margin=0.1, best_margin=0.0)[1] == DROPPED_GOLD
    assert decide(row, None, best="best", gold="gold", gold_margin=0.0, best_margin=0.1)[1] == DROPPED_OTHERS
    assert unconfident(row, best="best", margin=0.1) and not unconfident(row, best="best", margin=0.0)
    assert unconfident(scored(1, None, 0.9), best="best", margin=0.0)


def test_apply_keep_rule_flips_dropped_and_passes_quarantined_through():
    rows = [scored(1, 0.9, 0.9), scored(2, 0.9, 0.1), pair(3, status="quarantined", stage="score", reason="too_long")]
    out = apply_keep_rule(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA), best="best", gold="gold",
                          gold_margin=0.0, best_margin=0.0, flip_dropped=True).to_pylist()
    assert [(r["status"], r["reason"]) for r in out] == [
        ("kept", KEPT_GOLD_BEST), ("dropped", DROPPED_GOLD), ("kept", f"flipped:{DROPPED_GOLD}"),
        ("quarantined", "too_long")]
    # the recycled pair is turned round whole: its scores are about the new order
    assert out[2]["chosen"] == "bad 2" and [round(s["p"], 6) for s in out[2]["rm_scores"]] == [0.1, 0.9]
    assert all(r["stage"] == "stage2" for r in out[:3])
    # without recycling every input row comes out exactly once
    once = apply_keep_rule(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA), best="best", gold="gold",
                           gold_margin=0.0, best_margin=0.0, flip_dropped=False).to_pylist()
    assert [r["pair_id"] for r in once] == [r["pair_id"] for r in rows]


def test_keep_rule_reads_the_judges_label_and_keeps_their_votes():
    votes = [{"judge": "j", "sample": 0, "order": "original", "verdict": "chosen", "rationale": None,
              "position_consistent": True, "logprob_chosen": -0.1, "logprob_rejected": -2.0, "score": 1.9,
              "p_judge": 0.87}]
    unsure = dict(scored(1, 0.3, 0.8), judge_label="chosen", judge_votes=votes, judge_score=1.9)
    failed = dict(scored(2, 0.3, 0.8), status="quarantined", stage="judge", reason="judge_answer_failed:truncated",
                  judge_label="chosen")
    out = apply_keep_rule(pa.Table.from_pylist([unsure, failed], schema=PAIR_SCHEMA), best="best", gold="gold",
                          gold_margin=0.0, best_margin=0.0, flip_dropped=False).to_pylist()
    assert (out[0]["status"], out[0]["reason"]) == ("kept", KEPT_GOLD_JUDGES)
    assert out[0]["judge_votes"][0]["score"] == pytest.approx(1.9) and out[0]["judge_score"] == pytest.approx(1.9)
    # a pair the judges failed on counts as "judges do not agree"; the failure moves into its history
    assert (out[1]["status"], out[1]["reason"]) == ("dropped", DROPPED_OTHERS)
    assert out[1]["history"][-1] == {"stage": "judge", "status": "quarantined", "reason": "judge_answer_failed:truncated"}
