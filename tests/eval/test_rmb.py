"""RMB: the loader on the fixture and on the real shared files, and the metrics on small
hand-computed cases (every expected number is worked out in the comment next to it).
"""

from collections import Counter

import pytest

from synpref.eval.rmb import RMB, load_rmb, score_rmb

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_rmb_fixture_reads_both_sets():
    items = load_rmb(FIXTURES / "rmb" / "RMB_dataset")
    assert_well_formed(items, RMB)
    assert Counter(i.extra["set"] for i in items) == {"pairwise": 3, "bon": 2}
    multi_turn = next(i for i in items if i.sample_id == "pairwise:9002")
    assert [m["role"] for m in multi_turn.conversation] == ["user", "assistant", "user"]
    bon = next(i for i in items if i.sample_id == "bon:9201")
    assert bon.is_chosen == [True, False, False]
    assert bon.subset == "BoN_set/Helpfulness/Code/Documentation"
    assert bon.extra["models"] == ["gpt-4o", "Mistral-7B-Instruct-v0.1", "qwen-2-7b"]


def test_rmb_repo_layout_skips_other_models_results_and_the_readme(capsys):
    # the fixture folder is laid out as the official repo: RMB_dataset/ next to eval/result/ and a README
    items = load_rmb(FIXTURES / "rmb")
    assert [i.key for i in items] == [i.key for i in load_rmb(FIXTURES / "rmb" / "RMB_dataset")]
    out = capsys.readouterr().out
    assert f"skipping {FIXTURES / 'rmb' / 'eval' / 'result' / 'fixture-rm_result.json'}: not RMB data (no record has a " \
           "'conversation_input' field" in out
    assert f"skipping {FIXTURES / 'rmb' / 'README.md'}: not a data file" in out


def test_real_rmb_files(shared_benchmarks):
    items = load_rmb(shared_benchmarks / "rmb" / "RMB_dataset")
    assert_well_formed(items, RMB)
    sets = Counter(i.extra["set"] for i in items)
    # 46 pairwise files (3 files >= 4 MiB are not in the shared copy) and all 49 best-of-N files
    assert sets == {"pairwise": 14543, "bon": 3786}
    goals = Counter((i.extra["set"], i.subset.split("/")[1]) for i in items)
    assert goals == {("pairwise", "Helpfulness"): 8456, ("pairwise", "Harmlessness"): 6087,
                     ("bon", "Helpfulness"): 2109, ("bon", "Harmlessness"): 1677}
    bon = [i for i in items if i.extra["set"] == "bon"]
    assert all(i.is_chosen[0] and not any(i.is_chosen[1:]) and 3 <= len(i.responses) <= 7 for i in bon)
    assert any(len(i.conversation) > 1 for i in items)  # multi-turn prompts keep their history


# --- metrics -------------------------------------------------------------------------------------


def test_rmb_pairwise_and_best_of_n():
    pairwise = [
        {"category": "Pairwise_set/Helpfulness/Chat/Discussion", "score_chosen": 2, "score_rejected": 1},  # right
        {"category": "Pairwise_set/Helpfulness/Chat/Discussion", "score_chosen": 1, "score_rejected": 1},  # tie: wrong
        {"category": "Pairwise_set/Helpfulness/Code/Documentation", "score_chosen": 1, "score_rejected": 0},  # right
        {"category": "Pairwise_set/Harmlessness/S1", "score_chosen": 0, "score_rejected": -1},  # right
    ]
    bon = [
        {"category": "BoN_set/Helpfulness/Code/Documentation", "score_best": 3, "scores_losers": [1, 2]},  # beats all
        {"category": "BoN_set/Helpfulness/Code/Documentation", "score_best": 2, "scores_losers": [2, 1]},  # ties one: wrong
        {"category": "BoN_set/Harmlessness/S2", "score_best": 1, "scores_losers": [0]},  # right
    ]
    result = score_rmb(pairwise, bon)
    # pairwise helpfulness: 2 of 3 pairs = 66.667 (micro); categories Chat 50, Code 100 -> macro 75
    assert result["pairwise"]["micro"] == pytest.approx({"helpfulness": 200 / 3, "harmlessness": 100.0})
    assert result["pairwise"]["macro"] == pytest.approx({"helpfulness": 75.0, "harmlessness": 100.0})
    assert result["pairwise"]["counts"] == {"helpfulness": 3, "harmlessness": 1}
    assert result["pairwise"]["categories"]["Pairwise_set/Helpfulness/Chat/Discussion"] == pytest.approx(50.0)
    # best-of-N helpfulness: 1 of 2 prompts = 50; harmlessness 100
    assert result["bon"]["micro"] == pytest.approx({"helpfulness": 50.0, "harmlessness": 100.0})
    # score = mean(66.667, 100, 50, 100) = 79.1667
    assert result["score"] == pytest.approx((200 / 3 + 100 + 50 + 100) / 4)


def test_rmb_goal_must_be_in_the_category():
    with pytest.raises(ValueError, match="neither Helpfulness nor Harmlessness"):
        score_rmb([{"category": "Pairwise_set/Other/X", "score_chosen": 1, "score_rejected": 0}])
