"""Annotation rows: pairs -> LLM requests -> answers -> labelled pairs (DESIGN.md sections 1-2).

jobs/annotate.py strings these together with Ray Data:
  attributes: one request per pair (the five attributes, JSON-schema structured output)
  retrieve:   the k nearest human-verified pairs (synpref.annotation.retrieval)
  judge:      per judge x sample x order one request (synpref.annotation.judging), then votes grouped per pair
The pairs keep their schema columns (PAIR_SCHEMA, plus `key`: the input row's key) and never enter an
engine. A request carries its pair's key, its chat messages and its sampling parameters; answers come
back by key and are joined to their pairs (Ray Data hash joins: neither side is held in one process).
A pair whose request still fails after the retries is quarantined with the reason, at the stage that
failed; it is never labelled from a bad answer.
"""

from __future__ import annotations

import json

import pyarrow as pa

from synpref.annotation.attributes import ATTRIBUTE_COLUMNS, attribute_messages, check_answer
from synpref.annotation import logprob_judge
from synpref.annotation.judging import ORIGINAL, SWAPPED, check_verdict, first_order, judge_messages, verdict_schema
from synpref.annotation.votes import aggregate_votes, logprob_vote
from synpref.annotation.protocol import judge_guidelines
from synpref.record.ops import record_decision, row_key
from synpref.record.schema import PAIR_SCHEMA, QUARANTINED, to_table

STAGES = ["attributes", "judge"]
KEY = "key"  # the column pairs, requests and answers are joined on
CALIBRATION = "gold:"  # the key prefix of a D_gold pair, asked about to calibrate the judges

REQUEST_SCHEMA = pa.schema([("question_id", pa.string()), (KEY, pa.string()), ("messages_json", pa.string()),
                            ("question_params", pa.string()), ("max_tokens", pa.int64()), ("attempt", pa.int64())])
JUDGE_REQUEST_SCHEMA = REQUEST_SCHEMA.append(pa.field("judge", pa.string()))
LABEL_COLUMNS = ["judge_votes", "judge_label", "judge_agreement", "judge_score"]
VERDICT_SCHEMA = pa.schema([(KEY, pa.string())] + [PAIR_SCHEMA.field(c) for c in LABEL_COLUMNS] + [("error", pa.string())])


def keyed(rows: list[dict], keys: list[str]) -> pa.Table:
    """PAIR rows with their join key."""
    return to_table(rows).append_column(KEY, pa.array(keys, pa.string()))


def entering(batch: pa.Table) -> pa.Table:
    """Kept pairs as they enter annotation: an earlier job's decision moved into history, and keyed."""
    rows = [record_decision(row, stage=None) for row in batch.to_pylist()]
    return keyed(rows, [row_key(row) for row in rows])


def calibration_rows(gold: list[dict]) -> pa.Table:
    """D_gold pairs as rows to judge (keyed apart from the pool's pairs by CALIBRATION)."""
    return keyed(gold, [CALIBRATION + row_key(g) for g in gold])


def pairs_of(batch: pa.Table) -> pa.Table:
    """Keyed (or joined) rows -> PAIR rows."""
    return to_table(batch.to_pylist())


def sampling_params(schema: dict | None, *, temperature: float, max_tokens: int, seed: int) -> str:
    """vLLM sampling parameters as JSON (one string column: no Arrow struct inference on a JSON schema)."""
    params = {"temperature": float(temperature), "max_tokens": int(max_tokens), "seed": int(seed)}
    if schema is not None:
        params["structured_outputs"] = {"json": json.dumps(schema)}
    return json.dumps(params)


def attribute_requests(batch: pa.Table, *, taxonomy, schema: dict, cfg) -> pa.Table:
    """Keyed pairs -> one attribute request each."""
    params = sampling_params(schema if cfg.structured_output else None, temperature=cfg.temperature,
                             max_tokens=cfg.max_tokens, seed=cfg.seed)
    return pa.Table.from_pylist([{
        "question_id": f"{pair[KEY]}:attributes", KEY: pair[KEY],
        "messages_json": json.dumps(attribute_messages(pair, taxonomy, max_chars=cfg.max_chars_per_text),
                                    ensure_ascii=False),
        "question_params": params, "max_tokens": int(cfg.max_tokens), "attempt": 0,
    } for pair in batch.to_pylist()], schema=REQUEST_SCHEMA)


def attribute_check(schema: dict):
    def check(row: dict, text: str, n_tokens: int):
        return check_answer(text, n_tokens, int(row["max_tokens"]), schema)

    return check


def has_attributes(row: dict) -> bool:
    return all(row.get(name) is not None and len(row[name]) > 0 for name in ATTRIBUTE_COLUMNS)


def answer_failed(row: dict, stage: str) -> None:
    """Quarantine a pair at `stage` whose question failed every attempt, with the error's kind."""
    record_decision(row, stage=stage, status=QUARANTINED, reason=f"{stage}_answer_failed:{row['error'].split(':')[0]}")


def with_attributes(batch: pa.Table) -> pa.Table:
    """Keyed pairs joined with their attribute answer (answer_json, error) -> keyed pairs with the five
    attributes set, or quarantined at `attributes` when every attempt failed."""
    rows = batch.to_pylist()
    for row in rows:
        if row["error"] is not None:
            answer_failed(row, "attributes")
        else:
            row.update(json.loads(row["answer_json"]))
    return keyed(rows, [row[KEY] for row in rows])


def judge_requests(pair: dict, *, judges, protocol: dict, cfg, answer_tokens: dict, examples: dict) -> list[dict]:
    """Every question the judges are asked about one keyed pair: judge x sample x order (a logprob judge:
    judge x both orders, one greedy token each). `answer_tokens`: judge model -> (the answer prefix,
    the token ids of "1" and "2"), for logprob judges. `examples`: verified pair_id -> pair, for the
    pair's judge_examples."""
    shown = [examples[i] for i in pair["judge_examples"] or []]
    guidelines = judge_guidelines(protocol, task_category=pair["task_category"], objectivity=pair["objectivity"],
                                  controversiality=pair["controversiality"])
    schema = verdict_schema(cfg.rationale)
    requests = []

    def ask(judge, sample: int, order: str, messages: list[dict], params: str, max_tokens: int) -> None:
        requests.append({"question_id": f"{pair[KEY]}:{judge.name}:{sample}:{order}", KEY: pair[KEY],
                         "messages_json": json.dumps(messages, ensure_ascii=False), "question_params": params,
                         "max_tokens": max_tokens, "attempt": 0, "judge": judge.name})

    for judge in judges:
        if judge.get("mode", "sampled") == "logprob":
            prefix, token_ids = answer_tokens[judge.model]
            params = json.dumps(logprob_judge.sampling_params(token_ids, top_logprobs=cfg.logprob.top_logprobs,
                                                              seed=cfg.seed))
            for order in (ORIGINAL, SWAPPED):
                ask(judge, 0, order, judge_messages(pair, order, guidelines, shown, seed=cfg.seed,
                                                    max_chars=cfg.max_chars_per_text, rationale=False,
                                                    answer_prefix=prefix), params, 1)
            continue
        for sample in range(judge.samples):
            first = first_order(cfg.seed, pair["pair_id"], judge.name, sample)
            orders = [first, SWAPPED if first == ORIGINAL else ORIGINAL] if cfg.ask_swapped else [first]
            for order in orders:
                params = sampling_params(schema if cfg.structured_output else None, temperature=judge.temperature,
                                         max_tokens=cfg.max_tokens, seed=cfg.seed + 7919 * sample)
                ask(judge, sample, order, judge_messages(pair, order, guidelines, shown, seed=cfg.seed,
                                                         max_chars=cfg.max_chars_per_text, rationale=cfg.rationale),
                    params, int(cfg.max_tokens))
    return requests


def judge_questions(batch: pa.Table, **options) -> pa.Table:
    """Keyed pairs with their judge_examples -> every judge question about them (judge_requests)."""
    return pa.Table.from_pylist([q for pair in batch.to_pylist() for q in judge_requests(pair, **options)],
                                schema=JUDGE_REQUEST_SCHEMA)


def question_parts(question_id: str) -> tuple[str, int, str]:
    """(judge, sample, order) from a judge question id `<pair_id>:<judge>:<sample>:<order>`."""
    _, judge, sample, order = question_id.rsplit(":", 3)
    return judge, int(sample), order


def verdict_check(row: dict, text: str, n_tokens: int):
    """A sampled judge's JSON verdict, or a logprob judge's two slot log-probabilities."""
    _, _, order = question_parts(row["question_id"])
    params = json.loads(row["question_params"])
    if "allowed_token_ids" in params:  # a logprob judge
        slots, error = logprob_judge.slot_logprobs(row.get("logprobs"), params["allowed_token_ids"])
        return ({"slots": list(slots)} if slots else None), error
    return check_verdict(text, n_tokens, int(row["max_tokens"]), order)


def answer_votes(answers: list[dict]) -> list[dict]:
    """Answered questions of one pair -> its votes (sampled or logprob)."""
    votes = []
    for answer in answers:
        judge, sample, order = question_parts(answer["question_id"])
        value = json.loads(answer["answer_json"])
        if "slots" in value:
            votes.append(logprob_vote(judge, order, tuple(value["slots"])))
        else:
            votes.append({"judge": judge, "sample": sample, "order": order, "verdict": value["verdict"],
                          "rationale": value["rationale"]})
    return votes


def pair_verdict(group: pa.Table, *, threshold: float, combine: str) -> pa.Table:
    """All answers to one pair's judge questions (a Ray Data group by key) -> its label columns, or the
    error of a question that failed all its attempts."""
    answers = group.select(["question_id", KEY, "answer_json", "error"]).to_pylist()
    errors = sorted({a["error"] for a in answers if a["error"] is not None})
    row = {KEY: answers[0][KEY], "error": errors[0] if errors else None}
    if not errors:
        result = aggregate_votes(answer_votes(answers), threshold=threshold, combine=combine)
        row.update({name: result[name] for name in LABEL_COLUMNS})
    return pa.Table.from_pylist([row], schema=VERDICT_SCHEMA)


def with_verdict(batch: pa.Table) -> pa.Table:
    """Pairs (without their old label columns) joined with their verdict -> labelled PAIR rows; a pair
    with a failed question is quarantined at stage `judge`."""
    rows = batch.to_pylist()
    for row in rows:
        if row["error"] is not None:
            answer_failed(row, "judge")
    return to_table(rows)
