"""Annotation's rows without an engine: pairs keep their schema columns and meet their answers again by
key (the joins are a dict's here, Ray Data's in jobs/annotate.py); a request carries only its key,
messages and sampling parameters. Answers are written here as the engine would return them."""

import json
from pathlib import Path

import pyarrow as pa
import pytest
from omegaconf import OmegaConf

from synpref.annotation.attributes import attribute_schema
from synpref.annotation.protocol import load_protocol
from synpref.annotation.requests import (CALIBRATION, JUDGE_REQUEST_SCHEMA, KEY, LABEL_COLUMNS, REQUEST_SCHEMA,
                                         VERDICT_SCHEMA, attribute_requests, calibration_rows, entering,
                                         judge_questions, pair_verdict, pairs_of, with_attributes, with_verdict)
from synpref.record.schema import PAIR_SCHEMA, new_pair, to_table

REPO = Path(__file__).resolve().parents[2]
CFG = OmegaConf.load(REPO / "conf" / "annotate.yaml")
ATTRIBUTES = {"task_category": "math", "objectivity": "objective", "controversiality": "low",
              "desired_attributes": ["correct"], "guideline": "The right number wins."}


def pool(n=6) -> list[dict]:
    rows = [new_pair([{"role": "user", "content": f"What is {i} + {i}?"}], f"{2 * i}", f"{2 * i + 1}",
                     source="t", source_record=f"t:{i}") for i in range(n)]
    rows[1].update(stage="dedup", reason="first_seen")  # an earlier job's decision: it moves into history
    rows.append(dict(rows[0], source_record="t:dup"))  # the same pair_id twice (dedup was off): two rows
    return rows


def answer(requests: pa.Table, answer_of) -> pa.Table:
    """Requests -> {key, answer_json, error} as llm_pass writes them (`answer_of(request)` -> value or an error)."""
    rows = []
    for request in requests.to_pylist():
        value = answer_of(request)
        error = value if isinstance(value, str) else None
        rows.append({"question_id": request["question_id"], KEY: request[KEY], "error": error,
                     "answer_json": None if error else json.dumps(value)})
    return pa.Table.from_pylist(rows)


def joined(left: pa.Table, right: pa.Table) -> pa.Table:
    """An inner join on the key (pyarrow's join takes no nested columns; Ray Data's goes through polars)."""
    by_key = {r[KEY]: r for r in right.to_pylist()}
    schema = pa.schema(list(left.schema) + [f for f in right.schema if f.name != KEY])
    return pa.Table.from_pylist([{**r, **by_key[r[KEY]]} for r in left.to_pylist() if r[KEY] in by_key], schema=schema)


@pytest.fixture(scope="module")
def attributed():
    keyed = entering(to_table(pool()))
    requests = attribute_requests(keyed, taxonomy=OmegaConf.to_container(CFG.taxonomy),
                                  schema=attribute_schema(OmegaConf.to_container(CFG.taxonomy)), cfg=CFG.annotator)
    failing = keyed[KEY][2].as_py()
    answers = answer(requests, lambda r: "invalid_json:x" if r[KEY] == failing else ATTRIBUTES)
    return keyed, requests, with_attributes(joined(keyed, answers.select([KEY, "answer_json", "error"])))


def test_requests_carry_the_key_and_the_prompt_only(attributed):
    keyed, requests, _ = attributed
    assert requests.schema == REQUEST_SCHEMA and requests.num_rows == keyed.num_rows
    assert len(set(keyed[KEY].to_pylist())) == keyed.num_rows  # the duplicate pair_id has its own key
    messages = json.loads(requests["messages_json"][0].as_py())
    assert messages[-1]["role"] == "user" and "What is 0 + 0?" in messages[-1]["content"]


def test_attributes_come_back_to_their_pairs_or_quarantine_them(attributed):
    keyed, _, out = attributed
    assert out.num_rows == keyed.num_rows and out.schema == PAIR_SCHEMA.append(pa.field(KEY, pa.string()))
    rows = {r[KEY]: r for r in out.to_pylist()}
    failed = rows.pop(keyed[KEY][2].as_py())
    assert (failed["status"], failed["stage"], failed["reason"]) == ("quarantined", "attributes",
                                                                    "attributes_answer_failed:invalid_json")
    assert all(r["status"] == "kept" and r["task_category"] == "math" and r["guideline"] for r in rows.values())
    assert [h["reason"] for r in rows.values() for h in r["history"]] == ["first_seen"]


def test_judge_questions_show_examples_by_id_and_verdicts_label_the_pair(attributed):
    _, _, out = attributed
    kept = out.filter(pa.compute.equal(out["status"], "kept"))
    example = dict(pool()[3], pair_id="verified-1", human_label="chosen", **ATTRIBUTES)
    kept = kept.set_column(kept.column_names.index("judge_examples"), "judge_examples",
                           pa.array([["verified-1"]] * kept.num_rows, pa.list_(pa.string())))
    gold = calibration_rows([dict(example, pair_id="gold-1", judge_examples=["verified-1"])])
    asked = pa.concat_tables([kept, gold])
    judges = OmegaConf.create([{"name": "j", "model": "m", "mode": "sampled", "samples": 2, "temperature": 0.7}])
    questions = judge_questions(asked, judges=judges, protocol=load_protocol(str(REPO / "conf" / "protocol.md")),
                                cfg=CFG.judging, answer_tokens={}, examples={"verified-1": example})
    assert questions.schema == JUDGE_REQUEST_SCHEMA and questions.num_rows == asked.num_rows * 2 * 2
    assert all("What is 3 + 3?" in q for q in questions["messages_json"].to_pylist())  # the example is shown
    assert sum(k.startswith(CALIBRATION) for k in questions[KEY].to_pylist()) == 4

    first_key = kept[KEY][0].as_py()
    answers = answer(questions, lambda q: "engine_error:down" if q[KEY] == first_key and q["question_id"].endswith(
        ":1:swapped") else {"verdict": "chosen", "rationale": None})
    verdicts = pa.concat_tables([pair_verdict(answers.filter(pa.compute.equal(answers[KEY], k)), threshold=0.5,
                                              combine="majority") for k in kept[KEY].to_pylist()])
    assert verdicts.schema == VERDICT_SCHEMA
    labelled = with_verdict(joined(kept.drop_columns(LABEL_COLUMNS), verdicts))
    assert labelled.schema == PAIR_SCHEMA and labelled.num_rows == kept.num_rows
    rows = {r["source_record"]: r for r in labelled.to_pylist()}
    first = rows[kept["source_record"][0].as_py()]
    assert (first["status"], first["reason"]) == ("quarantined", "judge_answer_failed:engine_error")
    others = [r for k, r in rows.items() if k != kept["source_record"][0].as_py()]
    assert others and all(r["judge_label"] == "chosen" and len(r["judge_votes"]) == 4 for r in others)
    assert all(r["judge_examples"] == ["verified-1"] for r in others)


def test_pairs_of_drops_the_working_columns(attributed):
    _, _, out = attributed
    assert pairs_of(out.append_column("example_similarity", pa.array([[0.5]] * out.num_rows))).schema == PAIR_SCHEMA
