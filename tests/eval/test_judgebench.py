"""JudgeBench: the loader on the fixture and on the real shared files, the metrics on small
hand-computed cases, and the replay of the official judge outputs (every expected number is worked
out in the comment next to it).
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from synpref.eval.harness import score_items
from synpref.eval.judgebench import (
    JUDGEBENCH,
    load_judgebench,
    load_judgebench_outputs,
    replay_judgebench_outputs,
    score_judgebench,
)

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_judgebench_fixture_and_output_replay():
    items = load_judgebench(FIXTURES / "judgebench" / "data")
    assert_well_formed(items, JUDGEBENCH)
    assert [i.extra["label"] for i in items] == ["A>B", "B>A", "A>B", "B>A"]
    assert items[1].is_chosen == [False, True]
    assert items[0].subset == "mmlu-pro-physics"

    outputs = load_judgebench_outputs(
        FIXTURES / "judgebench" / "outputs"
        / "dataset=judgebench,response_model=fixture-model,judge_name=reward_model,judge_model=fixture_rm.jsonl"
    )
    result = replay_judgebench_outputs(outputs)
    # stored rewards (A, B): jb-1 (2, 1) label A>B right; jb-2 (0.5, 0.5) tie -> 0, wrong;
    # jb-3 (1, 3) label A>B wrong; jb-4 (-1, 2) label B>A right -> micro 2/4 = 50
    assert result["categories"] == pytest.approx({"knowledge": 100.0, "reasoning": 0.0, "math": 0.0, "coding": 100.0})
    assert result["overall_micro"] == pytest.approx(50.0)
    # scoring the loaded items with the same rewards gives the same metrics
    rewards = {"jb-1": [2.0, 1.0], "jb-2": [0.5, 0.5], "jb-3": [1.0, 3.0], "jb-4": [-1.0, 2.0]}
    assert score_items(items, [rewards[i.sample_id] for i in items])["judgebench"] == result


def test_judgebench_repo_layout_reads_data_not_outputs():
    # the fixture folder is laid out as the official repo: data/ (pairs) next to outputs/ (judge outputs)
    items = load_judgebench(FIXTURES / "judgebench")
    assert [i.key for i in items] == [i.key for i in load_judgebench(FIXTURES / "judgebench" / "data")]


def test_real_judgebench_files(shared_benchmarks):
    root = shared_benchmarks / "judgebench"
    items = load_judgebench(root / "data")
    assert_well_formed(items, JUDGEBENCH)
    assert Counter(i.extra["response_model"] for i in items) == {"gpt-4o-2024-05-13": 350, "claude-3-5-sonnet-20240620": 270}
    gpt = [i for i in items if i.extra["response_model"] == "gpt-4o-2024-05-13"]
    prefixes = Counter(next(p for p in ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
                            if i.subset.startswith(p)) for i in gpt)
    assert prefixes == {"mmlu-pro": 154, "livebench-reasoning": 98, "livebench-math": 56, "livecodebench": 42}
    assert all(sum(i.is_chosen) == 1 for i in items)
    outputs = sorted((root / "outputs").glob("*judge_name=reward_model*.jsonl"))
    assert len(outputs) == 5
    assert all(len(load_judgebench_outputs(f)) == 350 for f in outputs)


# --- metrics -------------------------------------------------------------------------------------


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


# --- the official reward-model outputs -----------------------------------------------------------


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


def _output_file(root: Path, judge_model: str) -> Path:
    name = f"dataset=judgebench,response_model=gpt-4o-2024-05-13,judge_name=reward_model,judge_model={judge_model}.jsonl"
    return root / "judgebench" / "outputs" / name


@pytest.mark.parametrize("judge_model", sorted(OFFICIAL_RM_OUTPUTS))
def test_judgebench_replay_reproduces_official_reward_model_results(shared_benchmarks, judge_model):
    rows = [json.loads(line) for line in _output_file(shared_benchmarks, judge_model).read_text().splitlines() if line.strip()]
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
