"""The reward-model scoring stage (synpref.scoring, jobs/score.py) on tiny random seq-cls models.

Unmarked: the per-row logic without Ray, and one real local Ray pass (two models, one actor pool) whose
scores must equal RewardScorer's in-process scores. Marked e2e: the job end to end, and the vLLM path."""

import json
import math
import random

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from synpref.demo.tiny_models import build_tiny_model
from synpref.record.counts import outcome_counts
from synpref.record.schema import PAIR_SCHEMA, new_pair, quarantined_row, to_table
from synpref.rm.scorer import RewardScorer
from synpref.scoring.figures import score_stats
from synpref.scoring.pairs import PairEncoder, decide
from synpref.scoring.transformers_backend import ScorePairs
from tests.conftest import run_job

MAX_LENGTH = 96
N_PAIRS = 40


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    root = tmp_path_factory.mktemp("rms")
    return {"a": build_tiny_model(root / "a", kind="seq_cls", seed=0),
            "b": build_tiny_model(root / "b", kind="seq_cls", seed=1)}


def make_rows(n=N_PAIRS, seed=0):
    """n rows: kept pairs of mixed lengths (every 7th far over MAX_LENGTH), some with earlier rm_scores,
    and rows not kept (dropped by dedup, quarantined at parse) that must pass through."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if i % 13 == 5:
            rows.append(quarantined_row(f"{{broken {i}", "bad_json", stage="parse", source="t", source_record=f"t:{i}"))
            continue
        words = rng.randint(1, 20) + (200 if i % 7 == 3 else 0)
        question = f"Question {i}: " + " ".join(rng.choice(["why", "how", "sky", "blue", "red"]) for _ in range(words))
        row = new_pair([{"role": "user", "content": question}], f"Answer {i} " + "good " * rng.randint(1, 12),
                       f"Answer {i} bad", source="t", source_record=f"t:{i}")
        if i % 11 == 2:
            row.update(status="dropped", stage="dedup", reason="duplicate")
        if i % 5 == 1:  # an earlier entry of another model stays; a stale entry of "a" is replaced
            row["rm_scores"] = [{"model": "other", "r_chosen": 1.0, "r_rejected": 0.0, "p": 0.75},
                                {"model": "a", "r_chosen": 9.0, "r_rejected": 9.0, "p": 0.5}]
        rows.append(row)
    return rows


def reference(path, rows):
    scorer = RewardScorer(path)
    chosen = scorer.score([(r["conversation"], r["chosen"]) for r in rows], MAX_LENGTH)
    rejected = scorer.score([(r["conversation"], r["rejected"]) for r in rows], MAX_LENGTH)
    return chosen, rejected


# --- without Ray ----------------------------------------------------------------------------------

def test_an_earlier_decision_moves_into_history():
    row = {"status": "kept", "stage": None, "reason": None, "history": []}
    decide(row, "kept", None)
    assert (row["stage"], row["reason"], row["history"]) == (None, None, [])
    decide(row, "kept", "truncated")
    assert (row["status"], row["stage"], row["reason"], row["history"]) == ("kept", "score", "truncated", [])
    decide(row, "quarantined", "too_long")
    assert row["history"] == [{"stage": "score", "status": "kept", "reason": "truncated"}]
    assert (row["status"], row["stage"], row["reason"]) == ("quarantined", "score", "too_long")


def test_too_long_pairs_are_quarantined_by_config_and_rows_not_kept_pass_through(rms):
    rows = make_rows(20, seed=1)
    before = json.loads(json.dumps(rows))
    out = ScorePairs([{"name": "a", "path": rms["a"]}], max_length=MAX_LENGTH, overflow="quarantine")(
        to_table(rows)).to_pylist()
    encoder = PairEncoder([RewardScorer(rms["a"]).tokenizer], MAX_LENGTH)
    kept_in = [r for r in before if r["status"] == "kept"]
    too_long = dict(zip((r["source_record"] for r in kept_in), encoder(kept_in)[1]))
    assert any(too_long.values()) and not all(too_long.values())
    for row, old in zip(out, before):
        if old["status"] != "kept":
            assert row == old  # unchanged, to the last field
        elif too_long[old["source_record"]]:
            assert (row["status"], row["stage"], row["reason"]) == ("quarantined", "score", "too_long")
            assert row["rm_scores"] == old["rm_scores"]  # no score of ours on a quarantined pair
        else:
            assert row["status"] == "kept" and row["reason"] is None
            assert [s["model"] for s in row["rm_scores"]][-1] == "a"


# --- one real local Ray pass: two models, truncation ----------------------------------------------

@pytest.fixture(scope="module")
def scored(rms, tmp_path_factory):
    import ray
    from ray.data import ActorPoolStrategy

    rows = make_rows()
    root = tmp_path_factory.mktemp("scored")
    pq.write_table(to_table(rows), root / "in.parquet")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        pairs = ray.data.read_parquet(str(root / "in.parquet"))
        input_counts = outcome_counts(pairs.select_columns(["status", "stage", "reason", "record_pair_index"])
                                      .iter_batches(batch_format="pyarrow"))
        out = pairs.map_batches(
            ScorePairs, batch_format="pyarrow", batch_size=8, compute=ActorPoolStrategy(min_size=1, max_size=1),
            num_cpus=1, fn_constructor_kwargs=dict(models=[{"name": "a", "path": rms["a"]}, {"name": "b", "path": rms["b"]}],
                                                   max_length=MAX_LENGTH, overflow="truncate", torch_threads=2))
        out.write_parquet(str(root / "pairs"), partition_cols=["status"])
    finally:
        ray.shutdown()
    table = pads.dataset(root / "pairs", format="parquet", partitioning="hive").to_table()
    written = sorted(table.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA).to_pylist(), key=lambda r: r["source_record"])
    return {"rows": sorted(rows, key=lambda r: r["source_record"]), "written": written, "path": str(root / "pairs"),
            "input_counts": input_counts}


def test_scores_equal_the_in_process_reward_scorer(rms, scored):
    kept = [(old, new) for old, new in zip(scored["rows"], scored["written"]) if old["status"] == "kept"]
    for name in ("a", "b"):
        chosen, rejected = reference(rms[name], [old for old, _ in kept])
        for (old, new), rc, rr in zip(kept, chosen, rejected):
            entry = next(s for s in new["rm_scores"] if s["model"] == name)
            assert abs(entry["r_chosen"] - rc) < 1e-4 and abs(entry["r_rejected"] - rr) < 1e-4, (name, old["source_record"])
            assert abs(entry["p"] - 1 / (1 + math.exp(rr - rc))) < 1e-6


def test_two_models_in_one_pass_keep_other_models_entries(scored):
    for old, new in zip(scored["rows"], scored["written"]):
        if old["status"] != "kept":
            assert new == old
            continue
        models = [s["model"] for s in new["rm_scores"]]
        if old["rm_scores"]:
            assert models == ["other", "a", "b"]  # "a" replaced where it stood, "b" appended
            assert new["rm_scores"][0] == old["rm_scores"][0] and new["rm_scores"][1]["r_chosen"] != 9.0
        else:
            assert models == ["a", "b"]


def test_too_long_pairs_are_truncated_kept_and_marked(scored):
    long = [new for old, new in zip(scored["rows"], scored["written"])
            if old["status"] == "kept" and int(old["source_record"].split(":")[1]) % 7 == 3]
    assert long and all((r["status"], r["stage"], r["reason"]) == ("kept", "score", "truncated") for r in long)
    assert all(len(r["rm_scores"]) >= 2 for r in long)


def test_counts_reconcile(scored):
    stats = score_stats(scored["input_counts"], scored["path"], ["a", "b"], seconds=1.0)
    kept_in = sum(r["status"] == "kept" for r in scored["rows"])
    assert stats["reconcile"]["ok"], stats["reconcile"]
    assert stats["records_in"] == kept_in == stats["pairs_scored"] + stats["totals"]["quarantined"]
    assert stats["passed_through"] == N_PAIRS - kept_in and len(scored["written"]) == N_PAIRS
    assert stats["pairs_truncated"] == sum(r["reason"] == "truncated" for r in scored["written"]) > 0
    assert stats["models"]["a"]["pairs"] == stats["models"]["b"]["pairs"] == kept_in
    share = sum(next(s for s in r["rm_scores"] if s["model"] == "b")["p"] > 0.5 for r in scored["written"]
                if r["status"] == "kept") / kept_in
    assert stats["models"]["b"]["share_p_above_half"] == round(share, 4)
    mean = sum(next(s for s in r["rm_scores"] if s["model"] == "a")["p"] for r in scored["written"]
               if r["status"] == "kept") / kept_in
    assert stats["models"]["a"]["mean_p"] == pytest.approx(mean, abs=1e-4)


# --- end to end: the job, the vLLM path -----------------------------------------------------------

def write_input(folder, rows):
    folder.mkdir(parents=True)
    pq.write_table(to_table(rows), folder / "part-0.parquet")
    return folder


def read_output(output):
    table = pads.dataset(output / "pairs", format="parquet", partitioning="hive").to_table()
    return sorted(table.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA).to_pylist(), key=lambda r: r["source_record"])


@pytest.mark.e2e
def test_job_scores_reconciles_and_skips_a_finished_run(rms, tmp_path):
    rows = make_rows(30, seed=2)
    data = write_input(tmp_path / "in", rows)
    args = [f"data.input={data}", f"data.output={tmp_path / 'out'}", f"max_length={MAX_LENGTH}", "overflow=quarantine",
            f"models=[{{name: best, path: {rms['a']}}}, {{name: gold, path: {rms['b']}}}]", "batch_size=8",
            "wandb.mode=disabled"]
    proc = run_job("score.py", *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    kept_in = sum(r["status"] == "kept" for r in rows)
    assert stats["reconcile"]["ok"] and stats["records_in"] == kept_in
    assert stats["stages"][0]["quarantined"].get("too_long", 0) == stats["totals"]["quarantined"] > 0
    assert stats["pairs_scored"] + stats["totals"]["quarantined"] == kept_in
    assert set(stats["models"]) == {"best", "gold"} and "pairs/s" in proc.stdout and "counts reconcile" in proc.stdout
    assert (tmp_path / "out" / "_SUCCESS").exists() and len(read_output(tmp_path / "out")) == 30
    again = run_job("score.py", *args, timeout=300)
    assert again.returncode == 0 and "already holds this run" in again.stdout


@pytest.mark.e2e
def test_vllm_path_gives_the_transformers_scores(rms, tmp_path):
    rows = make_rows(16, seed=3)
    data = write_input(tmp_path / "in", rows)
    proc = run_job("score.py", f"data.input={data}", f"data.output={tmp_path / 'out'}", f"max_length={MAX_LENGTH}",
                   f"models=[{{name: a, path: {rms['a']}}}, {{name: b, path: {rms['b']}}}]", "backend=vllm",
                   "batch_size=8", "wandb.mode=disabled", timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    written = read_output(tmp_path / "out")
    rows = sorted(rows, key=lambda r: r["source_record"])
    assert stats["reconcile"]["ok"] and len(written) == len(rows) and stats["totals"]["quarantined"] == 0
    kept = [(old, new) for old, new in zip(rows, written) if old["status"] == "kept"]
    assert stats["pairs_truncated"] == sum(new["reason"] == "truncated" for _, new in kept) > 0
    for name in ("a", "b"):
        chosen, rejected = reference(rms[name], [old for old, _ in kept])
        for (old, new), rc, rr in zip(kept, chosen, rejected):
            entry = next(s for s in new["rm_scores"] if s["model"] == name)
            assert abs(entry["r_chosen"] - rc) < 1e-4 and abs(entry["r_rejected"] - rr) < 1e-4, (name, old["source_record"])
    for old, new in zip(rows, written):
        if old["status"] != "kept":
            assert new == old
