"""Annotation rows: pairs -> LLM requests -> answers -> labelled pairs (DESIGN.md sections 1-2).

jobs/annotate.py strings these together with Ray Data:
  attributes: one request per pair (the five attributes, JSON-schema structured output)
  retrieve:   the k nearest human-verified pairs (synpref.annotation.retrieval)
  judge:      per judge x sample x order one request (synpref.annotation.judging), then votes grouped per pair
A request carries its pair as JSON in `payload`, so the pair rides through the engine untouched and
comes back whole. A pair whose request still fails after the retries is quarantined with the reason,
at the stage that failed; it is never labelled from a bad answer.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from synpref.annotation.attributes import ATTRIBUTE_COLUMNS, attribute_messages, check_answer
from synpref.annotation import logprob_judge
from synpref.annotation.judging import ORIGINAL, SWAPPED, check_verdict, first_order, judge_messages, verdict_schema
from synpref.annotation.votes import aggregate_votes, logprob_vote
from synpref.annotation.protocol import judge_guidelines
from synpref.record.ops import record_decision
from synpref.record.schema import PAIR_SCHEMA, QUARANTINED, to_table

STAGES = ["attributes", "judge"]


def plain(value):
    """Arrow/numpy values from a Ray Data row -> JSON-able Python values."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def pair_payload(row: dict) -> str:
    """A kept pair as it enters annotation, an earlier job's decision moved into history."""
    pair = {name: plain(row.get(name)) for name in PAIR_SCHEMA.names}
    return json.dumps(record_decision(pair, stage=None), ensure_ascii=False)


def sampling_params(schema: dict | None, *, temperature: float, max_tokens: int, seed: int) -> str:
    """vLLM sampling parameters as JSON (one string column: no Arrow struct inference on a JSON schema)."""
    params = {"temperature": float(temperature), "max_tokens": int(max_tokens), "seed": int(seed)}
    if schema is not None:
        params["structured_outputs"] = {"json": json.dumps(schema)}
    return json.dumps(params)


def attribute_request(row: dict, *, taxonomy, schema: dict, cfg) -> dict:
    payload = pair_payload(row)
    pair = json.loads(payload)
    return {
        "question_id": f"{pair['pair_id']}:attributes",
        "pair_id": pair["pair_id"],
        "payload": payload,
        "messages_json": json.dumps(attribute_messages(pair, taxonomy, max_chars=cfg.max_chars_per_text),
                                    ensure_ascii=False),
        "question_params": sampling_params(schema if cfg.structured_output else None, temperature=cfg.temperature,
                                           max_tokens=cfg.max_tokens, seed=cfg.seed),
        "max_tokens": int(cfg.max_tokens),
        "attempt": 0,
    }


def attribute_check(schema: dict):
    def check(row: dict, text: str, n_tokens: int):
        return check_answer(text, n_tokens, int(row["max_tokens"]), schema)

    return check


def has_attributes(row: dict) -> bool:
    return all(row.get(name) is not None and len(row[name]) > 0 for name in ATTRIBUTE_COLUMNS)


def as_annotated(row: dict) -> dict:
    """A pair that already has its attributes (from an earlier run), ready for retrieval."""
    return {"pair_id": row["pair_id"], "pair_json": pair_payload(row)}


def with_attributes(row: dict) -> dict:
    """An answered attribute request -> {pair_id, pair_json} with the five attributes set."""
    pair = json.loads(row["payload"])
    pair.update(json.loads(row["answer_json"]))
    return {"pair_id": pair["pair_id"], "pair_json": json.dumps(pair, ensure_ascii=False)}


CALIBRATION = "gold:"  # the pair_id prefix of questions about a D_gold pair, asked to calibrate the judges


def judge_requests(row: dict, *, judges, protocol: dict, cfg, answer_tokens: dict) -> list[dict]:
    """Every question the judges are asked about one pair: judge x sample x order (a logprob judge:
    judge x both orders, one greedy token each). `answer_tokens`: judge model -> (the answer prefix,
    the token ids of "1" and "2"), for logprob judges. A row with `calibrate` set is a D_gold pair
    asked to measure the judges: its questions carry the pair_id prefixed with CALIBRATION."""
    pair = json.loads(row["pair_json"])
    examples = json.loads(row["examples_json"])
    pair["judge_examples"] = [e["pair_id"] for e in examples]
    payload = json.dumps(pair, ensure_ascii=False)
    group = (CALIBRATION if row.get("calibrate") else "") + pair["pair_id"]
    guidelines = judge_guidelines(protocol, task_category=pair["task_category"], objectivity=pair["objectivity"],
                                  controversiality=pair["controversiality"])
    schema = verdict_schema(cfg.rationale)
    requests = []

    def ask(judge, sample: int, order: str, messages: list[dict], params: str, max_tokens: int) -> None:
        requests.append({"question_id": f"{group}:{judge.name}:{sample}:{order}", "pair_id": group,
                         "payload": payload, "messages_json": json.dumps(messages, ensure_ascii=False),
                         "question_params": params,
                         "max_tokens": max_tokens, "attempt": 0, "judge": judge.name})

    for judge in judges:
        if judge.get("mode", "sampled") == "logprob":
            prefix, token_ids = answer_tokens[judge.model]
            params = json.dumps(logprob_judge.sampling_params(token_ids, top_logprobs=cfg.logprob.top_logprobs,
                                                              seed=cfg.seed))
            for order in (ORIGINAL, SWAPPED):
                ask(judge, 0, order, judge_messages(pair, order, guidelines, examples, seed=cfg.seed,
                                                    max_chars=cfg.max_chars_per_text, rationale=False,
                                                    answer_prefix=prefix), params, 1)
            continue
        for sample in range(judge.samples):
            first = first_order(cfg.seed, pair["pair_id"], judge.name, sample)
            orders = [first, SWAPPED if first == ORIGINAL else ORIGINAL] if cfg.ask_swapped else [first]
            for order in orders:
                params = sampling_params(schema if cfg.structured_output else None, temperature=judge.temperature,
                                         max_tokens=cfg.max_tokens, seed=cfg.seed + 7919 * sample)
                ask(judge, sample, order, judge_messages(pair, order, guidelines, examples, seed=cfg.seed,
                                                         max_chars=cfg.max_chars_per_text, rationale=cfg.rationale),
                    params, int(cfg.max_tokens))
    return requests


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


def labelled_pair(group: pa.Table, *, threshold: float, combine: str) -> pa.Table:
    """All answers to one pair's judge questions (a Ray Data group) -> that pair as one PAIR row.

    A pair with any question that failed all its attempts is quarantined at stage `judge`."""
    answers = group.select(["question_id", "payload", "answer_json", "error"]).to_pylist()
    pair = json.loads(answers[0]["payload"])
    errors = sorted({a["error"] for a in answers if a["error"] is not None})
    if errors:
        record_decision(pair, stage="judge", status=QUARANTINED,
                        reason=f"judge_answer_failed:{errors[0].split(':')[0]}")
        return to_table([pair])
    result = aggregate_votes(answer_votes(answers), threshold=threshold, combine=combine)
    pair.update(judge_votes=result["judge_votes"], judge_label=result["judge_label"],
                judge_agreement=result["judge_agreement"], judge_score=result["judge_score"])
    return to_table([pair])


def unjudged_pairs(batch: pa.Table) -> pa.Table:
    """Annotated pairs ({pair_id, pair_json}) -> PAIR rows, kept with their attributes and no label
    (the attributes-only pass: judging.enabled=false)."""
    return to_table([json.loads(p) for p in batch.column("pair_json").to_pylist()])


def quarantined_pairs(batch: pa.Table, stage: str) -> pa.Table:
    """Questions that failed every attempt -> their pairs, quarantined with the last error."""
    pairs = []
    for row in batch.select(["payload", "error"]).to_pylist():
        pair = json.loads(row["payload"])
        record_decision(pair, stage=stage, status=QUARANTINED, reason=f"{stage}_answer_failed:{row['error'].split(':')[0]}")
        pairs.append(pair)
    return to_table(pairs)
