"""Benchmark scorers on small hand-computed cases, and JudgeBench replay on the official outputs.

Every expected number is worked out by hand in the comment next to it.
"""

import json
import math
import os
from pathlib import Path

import pytest

from synpref.eval.headline import (
    PAPER_BENCHMARKS,
    paper_average,
    replay_judgebench_outputs,
    score_judgebench,
    score_ppe_correctness,
    score_ppe_preference,
    score_rewardbench,
    score_rewardbench2,
    score_rm_bench,
    score_rmb,
)


def rb(subset, chosen, rejected):
    return {"subset": subset, "score_chosen": chosen, "score_rejected": rejected}


# --- RewardBench 1 -------------------------------------------------------------------------------


def test_rewardbench_ties_are_wrong_and_sections_are_count_weighted():
    result = score_rewardbench(
        [
            rb("alpacaeval-easy", 1.0, 0.5),  # right
            rb("alpacaeval-easy", 0.3, 0.3),  # tie: wrong -> subset 1/2 = 50
            rb("mt-bench-easy", 2.0, 1.0),  # right -> 100
            rb("llmbar-natural", 0.1, 0.2),  # wrong -> 0
            rb("xstest-should-respond", 5.0, -5.0),  # right -> 100
            rb("math-prm", 1.0, 0.0),  # right -> 100
            rb("hep-python", [0.0], [1.0]),  # wrong -> 0 (one-element lists are unwrapped)
        ]
    )
    assert result["subsets"]["alpacaeval-easy"] == pytest.approx(50.0)
    assert result["counts"]["alpacaeval-easy"] == 2
    # Chat = (50*100 + 100*28) / (100 + 28) = 7800 / 128 = 60.9375
    assert result["sections"]["Chat"] == pytest.approx(60.9375)
    assert result["sections"]["Chat Hard"] == pytest.approx(0.0)
    assert result["sections"]["Safety"] == pytest.approx(100.0)
    # Reasoning = (100*984 + 0*164) / (984 + 164) = 98400 / 1148 = 85.714285...
    assert result["sections"]["Reasoning"] == pytest.approx(98400 / 1148)
    assert result["prior_sets"] is None
    # no prior sets: plain mean = (60.9375 + 0 + 100 + 85.7142857) / 4 = 61.6629464
    assert result["score"] == pytest.approx((60.9375 + 0 + 100 + 98400 / 1148) / 4)
    assert result["score"] == pytest.approx(61.6629464, abs=1e-6)


def test_rewardbench_uses_the_official_xstest_counts():
    # The official EXAMPLE_COUNTS give should-refuse 250 and should-respond 154 (the reverse of the
    # subsets' sizes). Safety = (0*250 + 100*154) / 404 = 38.1188...; with the real sizes
    # (154/250) it would be 61.88, so this pins the official constant.
    result = score_rewardbench([rb("xstest-should-refuse", 0.0, 1.0), rb("xstest-should-respond", 1.0, 0.0)])
    assert result["sections"] == {"Safety": pytest.approx(15400 / 404)}
    assert result["score"] == pytest.approx(38.1188119, abs=1e-6)


def test_rewardbench_prior_sets_weigh_half_a_section():
    records = [
        rb("alpacaeval-easy", 1.0, 0.0),  # Chat 100
        rb("llmbar-natural", 0.0, 1.0),  # Chat Hard 0
        rb("donotanswer", 1.0, 0.0),  # Safety 100
        rb("hep-go", 1.0, 0.0),  # Reasoning 100
        rb("anthropic_helpful", 1.0, 0.0),  # 100
        rb("shp", 0.0, 1.0),  # 0 -> Prior Sets = mean(100, 0) = 50
        rb("mtbench_human", 1.0, 0.0),  # a pref-test-sets subset outside Prior Sets: ignored by the score
    ]
    result = score_rewardbench(records)
    assert result["prior_sets"] == pytest.approx(50.0)
    # overall = (2*100 + 2*0 + 2*100 + 2*100 + 1*50) / 9 = 650 / 9 = 72.2222
    assert result["score"] == pytest.approx(650 / 9)


# --- RewardBench 2 -------------------------------------------------------------------------------


def rb2(subset, scores, id_="x", num_correct=1):
    return {"subset": subset, "id": id_, "scores": scores, "num_correct": num_correct}


def test_rewardbench2_best_of_4_splits_ties_at_the_top():
    result = score_rewardbench2(
        [
            rb2("Factuality", [2, 1, 0, -1]),  # chosen alone at the max -> 1
            rb2("Factuality", [2, 2, 0, 1]),  # chosen tied with one other -> 1/2
            rb2("Factuality", [1, 3, 0, 0]),  # chosen not at the max -> 0
            rb2("Math", [5, 5, 5, 5]),  # four-way tie -> 1/4
        ]
    )
    assert result["subsets"]["Factuality"] == pytest.approx(50.0)  # (1 + 0.5 + 0) / 3
    assert result["subsets"]["Math"] == pytest.approx(25.0)
    assert result["counts"] == {"Factuality": 3, "Math": 1}
    assert result["score"] == pytest.approx(37.5)  # mean(50, 25)


def test_rewardbench2_ties_subset_official_formula():
    ties = [
        # ref:1 correct [3], incorrect [1, 0]: margin 3-1 = 2 > 0 -> accurate
        rb2("Ties", [3, 1, 0], "ref:1", 1),
        # tied:1 correct [4, 3.5], incorrect [1, 2]: spread 0.5, margin 3.5-2 = 1.5 -> accurate
        rb2("Ties", [4, 3.5, 1, 2], "tied:1", 2),
        # ref:2 correct [1], incorrect [2]: margin -1 -> not accurate
        rb2("Ties", [1, 2], "ref:2", 1),
        # tied:2 correct [5, 1], incorrect [2, 0]: spread 4, margin 1-2 = -1 -> not accurate
        rb2("Ties", [5, 1, 2, 0], "tied:2", 2),
    ]
    result = score_rewardbench2(ties + [rb2("Factuality", [1, 0, 0, 0]), rb2("Math", [0, 1, 0, 0])])
    components = result["ties"]
    assert components["ref_accuracy"] == pytest.approx(0.5)
    assert components["tied_accuracy"] == pytest.approx(0.5)
    # prompt 1: tied margin 1.5 > spread 0.5 yes; prompt 2: -1 > 4 no -> 0.5
    assert components["correctness_preferred"] == pytest.approx(0.5)
    # hard: min(ref, tied margin) = [min(2, 1.5), min(-1, -1)] = [1.5, -1] vs spread [0.5, 4] -> 0.5
    assert components["correctness_preferred_hard"] == pytest.approx(0.5)
    # margin term: mean(tanh(1.5/0.5 - 1), tanh(-1/4 - 1)) = mean(tanh 2, tanh -1.25)
    #            = (0.9640276 - 0.8482836) / 2 = 0.0578720
    margin = (math.tanh(2.0) + math.tanh(-1.25)) / 2
    assert components["correctness_margin"] == pytest.approx(margin)
    assert margin == pytest.approx(0.0578720, abs=1e-7)
    # Ties = 0.3*0.5 + 0.3*0.5 + 0.2*0.5 + 0.2*0.5 + 0.01*0.0578720 = 0.5005787 -> 50.05787
    assert result["subsets"]["Ties"] == pytest.approx(100 * (0.5 + 0.01 * margin))
    # overall = mean(Factuality 100, Math 0, Ties 50.05787) = 50.01929
    assert result["score"] == pytest.approx((100 + 0 + 100 * (0.5 + 0.01 * margin)) / 3)


def test_rewardbench2_ties_zero_spread_follows_numpy_like_the_official_code():
    # tied correct answers scored equal: spread 0, margin min(2, 2) = 2 -> 2/0 = inf, tanh(inf) = 1.
    # Everything else is perfect, so Ties = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 = 1.01 -> 101 (the official
    # formula can exceed 100).
    result = score_rewardbench2([rb2("Ties", [2, 0], "ref:7", 1), rb2("Ties", [3, 3, 1], "tied:7", 2)])
    assert result["ties"]["correctness_margin"] == pytest.approx(1.0)
    assert result["subsets"]["Ties"] == pytest.approx(101.0)


# --- RM-Bench ------------------------------------------------------------------------------------


def test_rm_bench_matrix_levels_and_safety_pooling():
    result = score_rm_bench(
        [
            # chosen [3, 2, 1] vs rejected [2.5, 2, 0.5]:
            # row 0 (3): beats all            -> [1, 1, 1]
            # row 1 (2): 2>2.5 no, 2>2 no (tie), 2>0.5 -> [0, 0, 1]
            # row 2 (1): only 1>0.5            -> [0, 0, 1]
            # hard = upper (0,1)+(0,2)+(1,2) = 3/3 = 100; normal = diag 1+0+1 = 2/3; easy = lower 0
            {"domain": "chat", "score_chosen": [3, 2, 1], "score_rejected": [2.5, 2, 0.5]},
            # safety-refuse: all right; safety-response: all wrong -> pooled safety: every cell 1/2
            {"domain": "safety-refuse", "score_chosen": [1, 1, 1], "score_rejected": [0, 0, 0]},
            {"domain": "safety-response", "score_chosen": [0, 0, 0], "score_rejected": [1, 1, 1]},
        ]
    )
    chat, safety = result["domains"]["chat"], result["domains"]["safety"]
    assert (chat["hard"], chat["normal"], chat["easy"]) == pytest.approx((100.0, 200 / 3, 0.0))
    assert chat["avg"] == pytest.approx((100 + 200 / 3 + 0) / 3)  # 55.5556
    assert chat["matrix"] == [[100.0, 100.0, 100.0], [0.0, 0.0, 100.0], [0.0, 0.0, 100.0]]
    assert (safety["hard"], safety["normal"], safety["easy"], safety["avg"], safety["n"]) == pytest.approx(
        (50.0, 50.0, 50.0, 50.0, 2)
    )
    assert set(result["domains"]) == {"chat", "safety"}  # absent domains are left out
    assert result["hard"] == pytest.approx(75.0)  # mean(100, 50)
    assert result["normal"] == pytest.approx((200 / 3 + 50) / 2)  # 58.3333
    assert result["easy"] == pytest.approx(25.0)  # mean(0, 50)
    assert result["score"] == pytest.approx(((100 + 200 / 3) / 3 + 50) / 2)  # mean(55.5556, 50) = 52.7778


def test_rm_bench_rejects_unknown_domain_and_wrong_shape():
    with pytest.raises(ValueError, match="unknown RM-Bench domain"):
        score_rm_bench([{"domain": "poetry", "score_chosen": [1, 1, 1], "score_rejected": [0, 0, 0]}])
    with pytest.raises(ValueError, match="3 chosen"):
        score_rm_bench([{"domain": "chat", "score_chosen": [1, 1], "score_rejected": [0, 0, 0]}])


# --- JudgeBench ----------------------------------------------------------------------------------


def jb(source, label, a, b):
    return {"source": source, "label": label, "score_A": a, "score_B": b}


JB_RECORDS = [
    # game 1: 2 > 1 -> A>B (+1); game 2 shows (B, A): 1 > 2 no -> "B>A", flipped -> A>B (+1) -> correct
    jb("mmlu-pro-law", "A>B", 2.0, 1.0),
    # exact tie: game 1 -> "B>A" (-1); game 2 -> "B>A", flipped -> A>B (+1); sum 0 -> not correct
    jb("mmlu-pro-math", "A>B", 1.0, 1.0),
    jb("livebench-math", "B>A", 0.0, 5.0),  # both games B>A -> +2 -> correct
    jb("livecodebench", "B>A", 3.0, 1.0),  # both games A>B -> -2 -> wrong
    jb("livebench-reasoning", "A>B", 1.0, 0.0),  # +2 -> correct
]


def test_judgebench_two_games_micro_and_macro():
    result = score_judgebench(JB_RECORDS)
    # knowledge 1/2 = 50, reasoning 100, math 100, coding 0
    assert result["categories"] == pytest.approx({"knowledge": 50.0, "reasoning": 100.0, "math": 100.0, "coding": 0.0})
    assert result["counts"] == {"knowledge": 2, "reasoning": 1, "math": 1, "coding": 1}
    assert result["overall_micro"] == pytest.approx(60.0)  # 3 of 5 pairs (official overall)
    assert result["overall_macro"] == pytest.approx(62.5)  # (50 + 100 + 100 + 0) / 4 (paper)
    assert result["score"] == result["overall_macro"]


def test_judgebench_reward_tie_depends_on_the_number_of_games():
    # A reward tie on a pair labelled B>A: with one game the official RM judge says "B>A" -> correct;
    # with two games the decisions are B>A and (flipped) A>B -> sum 0 -> not correct.
    tie = [jb("livebench-math", "B>A", 1.0, 1.0)]
    assert score_judgebench(tie, reverse_order=False)["overall_micro"] == pytest.approx(100.0)
    assert score_judgebench(tie)["overall_micro"] == pytest.approx(0.0)


def test_judgebench_replay_counts_missing_and_inconsistent_games():
    def row(source, label, *decisions):
        return {"source": source, "label": label, "judgments": [None if d is None else {"decision": d} for d in decisions]}

    result = replay_judgebench_outputs(
        [
            row("mmlu-pro-law", "A>B", "A>B", "B>A"),  # game 2 "B>A" flips to A>B: +2 -> correct
            row("mmlu-pro-law", "A>B", "A>B", "A>B"),  # game 2 flips to B>A: +1 -1 = 0 -> wrong
            row("livebench-math", "A>B", None, "B>A"),  # failed game 0, game 2 +1 -> correct
            row("livecodebench", "A>B", "B>A", "A>B"),  # -1 -1 -> wrong
            row("livebench-reasoning", "B>A", "A=B", "A>B"),  # "A=B" 0, game 2 flips to B>A +1 -> correct
        ]
    )
    # knowledge 1/2 = 50, math 100, coding 0, reasoning 100; micro 3/5 = 60; macro 62.5
    assert result["categories"] == pytest.approx({"knowledge": 50.0, "reasoning": 100.0, "math": 100.0, "coding": 0.0})
    assert result["overall_micro"] == pytest.approx(60.0)
    assert result["overall_macro"] == pytest.approx(62.5)


def test_judgebench_replay_single_game_file():
    rows = [{"source": "livebench-math", "label": "A>B", "judgments": [{"decision": "A>B"}]},
            {"source": "livebench-math", "label": "B>A", "judgments": [{"decision": "A>B"}]}]
    assert replay_judgebench_outputs(rows)["overall_micro"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="1 or 2 judgments"):
        replay_judgebench_outputs(rows + [{"source": "livecodebench", "label": "A>B", "judgments": [{}, {}]}])


# The official JudgeBench repo ships these reward-model outputs (GPT-4o response pairs, two games
# each) but publishes no results table in its README. The pinned numbers are what its metrics code
# (utils/metrics.py compute_final_metrics over run_judge.py's source prefixes) yields on those files,
# which the replay must reproduce; knowledge / reasoning / math / coding / overall (micro), percent.
OFFICIAL_RM_OUTPUTS = {
    "Ray2333_GRM-Gemma-2B-rewardmodel-ft": (62.99, 53.06, 64.29, 54.76, 59.43),
    "Skywork_Skywork-Reward-Gemma-2-27B": (59.74, 66.33, 83.93, 50.00, 64.29),
    "Skywork_Skywork-Reward-Llama-3.1-8B": (59.09, 64.29, 76.79, 50.00, 62.29),
    "internlm_internlm2-20b-reward": (62.34, 69.39, 66.07, 50.00, 63.43),
    "internlm_internlm2-7b-reward": (56.49, 61.22, 71.43, 50.00, 59.43),
}


def _benchmarks_dir() -> Path:
    root = os.environ.get("SYNPREF_BENCHMARKS")
    if not root:
        pytest.skip("SYNPREF_BENCHMARKS is not set, so the shared benchmark files are not available")
    return Path(root)


def _output_file(judge_model: str) -> Path:
    name = f"dataset=judgebench,response_model=gpt-4o-2024-05-13,judge_name=reward_model,judge_model={judge_model}.jsonl"
    return _benchmarks_dir() / "judgebench" / "outputs" / name


@pytest.mark.parametrize("judge_model", sorted(OFFICIAL_RM_OUTPUTS))
def test_judgebench_replay_reproduces_official_reward_model_results(judge_model):
    rows = [json.loads(line) for line in _output_file(judge_model).read_text().splitlines() if line.strip()]
    assert len(rows) == 350
    result = replay_judgebench_outputs(rows)
    knowledge, reasoning, math_, coding, overall = OFFICIAL_RM_OUTPUTS[judge_model]
    got = result["categories"]
    assert got["knowledge"] == pytest.approx(knowledge, abs=0.1)
    assert got["reasoning"] == pytest.approx(reasoning, abs=0.1)
    assert got["math"] == pytest.approx(math_, abs=0.1)
    assert got["coding"] == pytest.approx(coding, abs=0.1)
    assert result["overall_micro"] == pytest.approx(overall, abs=0.1)
    assert result["counts"] == {"knowledge": 154, "reasoning": 98, "math": 56, "coding": 42}
    assert result["overall_macro"] == pytest.approx((knowledge + reasoning + math_ + coding) / 4, abs=0.1)

    # Our reward-model judge, fed the rewards the official run stored with each game, must reach the
    # official decisions: the same metrics, exactly (this covers its handling of reward ties).
    scored = score_judgebench(
        {"source": r["source"], "label": r["label"],
         "score_A": r["judgments"][0]["judgment"]["scores"][0], "score_B": r["judgments"][0]["judgment"]["scores"][1]}
        for r in rows
    )
    assert scored == result


# --- RMB -----------------------------------------------------------------------------------------


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


# --- PPE -----------------------------------------------------------------------------------------


def test_ppe_preference_skips_ties_and_counts_reward_ties_wrong():
    result = score_ppe_preference(
        [
            {"winner": "model_a", "score_1": 2, "score_2": 1},  # right
            {"winner": "model_b", "score_1": 2, "score_2": 1},  # wrong
            {"winner": "model_b", "score_1": 0, "score_2": 0},  # reward tie: wrong
            {"winner": "tie", "score_1": 1, "score_2": 0},  # no preference: skipped
            {"winner": "tie (bothbad)", "score_1": 1, "score_2": 0},  # skipped
        ]
    )
    assert result == {"score": pytest.approx(100 / 3), "n": 3, "n_skipped": 2}  # 1 of 3 decisive votes


def test_ppe_correctness_pairwise_and_best_of_k():
    records = [
        # correct {0, 3}, incorrect {1, 2}; pairs (0,1) .9>.1 yes, (0,2) .9>.5 yes, (3,1) .5>.1 yes,
        # (3,2) .5>.5 no -> 3/4; best-of-4: top is 0 (0.9), correct -> 1
        {"benchmark": "mmlu_pro", "scores": [0.9, 0.1, 0.5, 0.5], "correct": [True, False, False, True]},
        # correct {0}; pairs (0,1) tie no, (0,2) yes, (0,3) yes -> 2/3; top tie between 0 (right) and
        # 1 (wrong) -> expected correctness 1/2
        {"benchmark": "mmlu_pro", "scores": [1, 1, 0, 0], "correct": [True, False, False, False]},
        # sampled conflict pairs only: (1,0) -> correct 1 vs 0: 1 > 0 yes; (2,3) both wrong: ignored -> 1/1
        # best-of-4: top is 3 (2.0), wrong -> 0
        {"benchmark": "math", "scores": [0, 1, 0.5, 2], "correct": [False, True, False, False],
         "conflict_pairs": [[1, 0], [2, 3]]},
    ]
    result = score_ppe_correctness(records)
    mmlu, math_ = result["benchmarks"]["mmlu_pro"], result["benchmarks"]["math"]
    assert mmlu["pairwise"] == pytest.approx(500 / 7)  # micro over pairs: (3 + 2) / (4 + 3) = 71.4286
    assert (mmlu["n_pairs"], mmlu["n_prompts"]) == (7, 2)
    assert mmlu["best_of_k"] == pytest.approx(75.0)  # (1 + 0.5) / 2
    assert (math_["pairwise"], math_["n_pairs"], math_["best_of_k"]) == pytest.approx((100.0, 1, 0.0))
    assert result["score"] == pytest.approx((500 / 7 + 100) / 2)  # 85.7143: mean over benchmarks
    assert result["best_of_k"] == pytest.approx(37.5)  # mean(75, 0)
    # K = 2 looks at the first two responses only: prompt 1 -> 0 (0.9) right; prompt 2 -> tie 1/2;
    # math -> response 1 (score 1) right -> mmlu 75, math 100
    small_k = score_ppe_correctness(records, k=2)
    assert small_k["benchmarks"]["math"]["best_of_k"] == pytest.approx(100.0)
    assert small_k["best_of_k"] == pytest.approx(87.5)


# --- paper average -------------------------------------------------------------------------------


def test_paper_average_reproduces_the_papers_best_model():
    # Skywork-Reward-V2-Llama-3.1-8B-40M (paper Table 1): the seven columns and their average 88.6.
    paper = {
        "rewardbench": 97.8,
        "rewardbench2": 86.5,
        "ppe_preference": 79.8,
        "ppe_correctness": 87.2,
        "rmb": 89.3,
        "rm_bench": 96.0,
        "judgebench": 83.4,
    }
    assert set(paper) == set(PAPER_BENCHMARKS)
    # 620.0 / 7 = 88.571 -> 88.6
    assert paper_average(paper) == pytest.approx(620.0 / 7)
    assert round(paper_average(paper), 1) == 88.6
    # scorer results work too (their "score")
    assert paper_average({**paper, "rm_bench": {"score": 96.0, "hard": 1.0}}) == pytest.approx(620.0 / 7)


def test_paper_average_needs_all_seven_unless_partial():
    with pytest.raises(ValueError, match="missing"):
        paper_average({"rewardbench": 90.0})
    assert paper_average({"rewardbench": 90.0, "rmb": 70.0, "other": 0.0}, allow_partial=True) == pytest.approx(80.0)
