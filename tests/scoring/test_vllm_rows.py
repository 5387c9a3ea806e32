"""The vLLM scoring path's rows without an engine: SideRequests splits pairs into a `pair` row (its
schema columns) and two token-id rows, and `assemble` puts a key's rows back together. The engines'
rewards are filled in here as collect_reward writes them; the real engines run in the e2e test
tests/scoring/test_scoring_stage.py::test_vllm_path_gives_the_transformers_scores."""

import pyarrow as pa
import pytest

from synpref.record.schema import PAIR_SCHEMA, to_table
from synpref.scoring.pairs import ENGINE_ERROR
from synpref.scoring.vllm_backend import SideRequests, assemble, conform, request_schema, side_schema
from tests.scoring.test_scoring_stage import MAX_LENGTH, make_rows, rms  # noqa: F401  (rms is a fixture)


def engines(sides: pa.Table, fail: set[str] = frozenset()) -> pa.Table:
    """Each side row's reward per model: its token count (model 0) and minus it (model 1); an error
    for the keys in `fail`."""
    rows = conform(request_schema(2))(sides.filter(pa.compute.not_equal(sides["side"], "pair"))).to_pylist()
    for row in rows:
        if row["key"] in fail:
            row["error"] = f"{ENGINE_ERROR}:model 0: boom"
        else:
            row["reward_0"], row["reward_1"] = float(len(row["ids_0"])), -float(len(row["ids_1"]))
    return pa.Table.from_pylist(rows, schema=request_schema(2))


def regroup(sides: pa.Table, rewarded: pa.Table) -> list[dict]:
    pairs = sides.filter(pa.compute.equal(sides["side"], "pair"))
    union = pa.concat_tables([pairs, conform(side_schema(2))(rewarded)])
    out = []
    for key in sorted(set(union["key"].to_pylist())):
        out += assemble(union.filter(pa.compute.equal(union["key"], key)), names=["a", "b"]).to_pylist()
    return out


@pytest.fixture(scope="module")
def split(rms):  # noqa: F811
    rows = make_rows(30, seed=4)
    stage = SideRequests([rms["a"], rms["b"]], max_length=MAX_LENGTH, overflow="quarantine")
    return rows, stage(to_table(rows))


def test_pairs_keep_their_schema_columns_and_engine_rows_carry_only_ids(split):
    rows, sides = split
    assert sides.schema == side_schema(2)
    pair_rows = sides.filter(pa.compute.equal(sides["side"], "pair"))
    assert pair_rows.num_rows == len(rows)
    engine_rows = sides.filter(pa.compute.not_equal(sides["side"], "pair"))
    kept = [r for r in pair_rows.select(PAIR_SCHEMA.names).to_pylist() if r["status"] == "kept"]
    assert engine_rows.num_rows == 2 * len(kept) > 0
    assert all(v is None for name in PAIR_SCHEMA.names for v in engine_rows[name].to_pylist())
    assert all(ids for name in ("ids_0", "ids_1") for ids in engine_rows[name].to_pylist())


def test_assemble_gives_back_every_pair_scored_or_untouched(split):
    rows, sides = split
    out = {r["source_record"]: r for r in regroup(sides, engines(sides))}
    assert len(out) == len(rows)
    decided = {r["source_record"]: r for r in sides.filter(pa.compute.equal(sides["side"], "pair"))
               .select(PAIR_SCHEMA.names).to_pylist()}
    scored = 0
    for row in rows:
        new = out[row["source_record"]]
        if decided[row["source_record"]]["status"] != "kept":
            assert new == decided[row["source_record"]]  # passed through (or quarantined as too long) unchanged
            continue
        scored += 1
        entries = {s["model"]: s for s in new["rm_scores"]}
        assert entries["a"]["r_chosen"] > 0 and entries["b"]["r_chosen"] < 0
        assert {k: v for k, v in new.items() if k != "rm_scores"} == {
            k: v for k, v in decided[row["source_record"]].items() if k != "rm_scores"}
    assert scored > 0
    assert any(r["status"] == "quarantined" and r["reason"] == "too_long" for r in out.values())


def test_an_engine_error_quarantines_only_its_pair(split):
    rows, sides = split
    keys = sides.filter(pa.compute.not_equal(sides["side"], "pair"))["key"].to_pylist()
    out = regroup(sides, engines(sides, fail={keys[0]}))
    failed = [r for r in out if r["reason"] == ENGINE_ERROR]
    assert len(failed) == 1 and failed[0]["status"] == "quarantined"
    assert sum(r["status"] == "kept" and r["rm_scores"] is not None for r in out) == len(keys) // 2 - 1
