"""PPE human preference and correctness: the loaders on the fixtures (JSONL and Parquet) and the
metrics on small hand-computed cases (every expected number is worked out in the comment next to it).
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synpref.eval.ppe import (
    PPE_CORRECTNESS,
    PPE_PREFERENCE,
    load_ppe_correctness,
    load_ppe_preference,
    score_ppe_correctness,
    score_ppe_preference,
)

from .helpers import FIXTURES, assert_well_formed

# --- loading -------------------------------------------------------------------------------------


def test_ppe_preference_fixture():
    items = load_ppe_preference(FIXTURES / "ppe" / "human_preference.jsonl")
    assert_well_formed(items, PPE_PREFERENCE)
    assert [i.is_chosen for i in items] == [[True, False], [False, True], [False, False]]  # model_a, model_b, tie
    assert items[2].extra["winner"] == "tie"


def test_ppe_correctness_fixture_infers_the_set_from_the_file_name():
    items = load_ppe_correctness(FIXTURES / "ppe" / "mmlu_pro_best_of_k.jsonl")
    assert_well_formed(items, PPE_CORRECTNESS)
    (item,) = items
    assert item.subset == "mmlu_pro"
    assert item.sample_id == "mmlu_pro:mp-1:llama-3-8b-instruct"
    assert item.is_chosen == [True, False, False, True]
    assert item.responses[1] == "Sodium. The answer is (B)."
    assert item.extra["conflict_pairs"] == [[0, 1], [3, 2]]
    with pytest.raises(ValueError, match="pass subset="):
        load_ppe_correctness(FIXTURES / "ppe" / "human_preference.jsonl")


def test_ppe_correctness_reads_parquet_with_32_responses(tmp_path):
    # The hub files are Parquet; response_10 must sort after response_9.
    row = {"question_id": "q", "model_name": "m", "prompt": "p", "scores": [i % 2 == 0 for i in range(32)],
           "sampled_conflict_pairs": [[0, 1]]}
    row.update({f"response_{i + 1}": f"answer {i + 1}" for i in range(32)})
    path = tmp_path / "PPE-GPQA-Best-of-K.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (item,) = load_ppe_correctness(path)
    assert item.subset == "gpqa"
    assert item.responses == [f"answer {i + 1}" for i in range(32)]
    assert item.is_chosen[:3] == [True, False, True]


# --- metrics -------------------------------------------------------------------------------------


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
