"""The one record type of synpref: a preference pair, as an Arrow schema.

Every stage reads and writes rows of PAIR_SCHEMA. A row is a pair (x, y_w, y_l) plus what the
pipeline learnt about it: the five preference attributes, judge votes, reward-model scores, and
provenance (the last stage that decided on it, its verdict and why, and the earlier decisions).

Rows that could not become a pair (a broken input line) travel in the same schema with
status="quarantined", the reason, and the raw input, so one writer handles every outcome.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

# Row outcomes. A stage only looks at rows that are still KEPT.
KEPT = "kept"
DROPPED = "dropped"
QUARANTINED = "quarantined"

ROLES = ("system", "user", "assistant")

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

JUDGE_VOTE = pa.struct(
    [
        ("judge", pa.string()),  # model name of the judge
        ("sample", pa.int32()),  # index of the sample within this judge (self-consistency)
        ("order", pa.string()),  # "original" (chosen shown as Candidate 1) or "swapped"
        ("verdict", pa.string()),  # which original response the judge preferred: "chosen" or "rejected"
        ("rationale", pa.string()),
        ("position_consistent", pa.bool_()),  # same verdict in both orders; null if asked in one order
        # logprob judges (judges[].mode = logprob): this order's log p of the chosen's and the
        # rejected's candidate number, and the judge's score over both orders with P_judge = sigmoid(score)
        ("logprob_chosen", pa.float32()),
        ("logprob_rejected", pa.float32()),
        ("score", pa.float32()),
        ("p_judge", pa.float32()),
    ]
)

RM_SCORE = pa.struct(
    [
        ("model", pa.string()),
        ("r_chosen", pa.float32()),
        ("r_rejected", pa.float32()),
        ("p", pa.float32()),  # sigmoid(r_chosen - r_rejected)
    ]
)

DECISION = pa.struct([("stage", pa.string()), ("status", pa.string()), ("reason", pa.string())])

PAIR_SCHEMA = pa.schema(
    [
        # identity: a hash of (conversation, chosen, rejected); the dedup key is its first 8 bytes
        ("pair_id", pa.string()),
        ("conversation", pa.list_(MESSAGE)),  # the prompt x: system/user/assistant turns, ends with user
        ("chosen", pa.string()),  # y_w
        ("rejected", pa.string()),  # y_l
        ("margin", pa.float32()),  # optional preference strength (score gap), for a BT margin
        # where it came from
        ("source", pa.string()),  # dataset name (file stem unless configured)
        ("source_record", pa.string()),  # "path:line" for JSONL, "path#row" for Parquet
        ("record_pair_index", pa.int32()),  # which pair of a multi-response record (0 = first)
        # the five preference attributes (DESIGN.md section 1)
        ("task_category", pa.string()),
        ("objectivity", pa.string()),
        ("controversiality", pa.string()),
        ("desired_attributes", pa.list_(pa.string())),
        ("guideline", pa.string()),
        # labels
        ("judge_votes", pa.list_(JUDGE_VOTE)),
        ("judge_label", pa.string()),  # aggregate verdict: "chosen", "rejected", "tie" or null
        ("judge_agreement", pa.float32()),  # share of counted votes agreeing with judge_label
        ("judge_score", pa.float32()),  # logprob judges combined by mean score: > 0 favours chosen; else null
        ("judge_examples", pa.list_(pa.string())),  # pair_ids of the verified examples the judges saw
        ("human_label", pa.string()),  # "chosen", "flipped" or "undecidable" (D_gold); gold rows are
        # stored in the verified order: a "flipped" pair had its responses swapped on import
        ("is_gold", pa.bool_()),
        ("is_silver", pa.bool_()),
        ("rm_scores", pa.list_(RM_SCORE)),
        # provenance
        ("status", pa.string()),  # kept / dropped / quarantined
        ("stage", pa.string()),  # the stage that set status
        ("reason", pa.string()),  # why; null when kept, unless the stage records the rule that kept it
        ("history", pa.list_(DECISION)),  # decisions of earlier jobs, oldest first
        ("raw", pa.string()),  # the unparsed input, only on quarantined rows
    ]
)

def canonical_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def pair_id(conversation: list[dict], chosen: str, rejected: str) -> str:
    """Content hash of the pair: equal iff (conversation, chosen, rejected) are equal."""
    key = canonical_json([[[m["role"], m["content"]] for m in conversation], chosen, rejected])
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def unordered_key(conversation: list[dict], a: str, b: str) -> str:
    """Identity of a pair regardless of which response is chosen: a pair and its flip share it, so a
    human-verified (possibly flipped) pair can be matched back to the pool it came from."""
    return pair_id(conversation, *sorted((a, b)))


def dedup_key(pair_id_hex: str) -> int:
    """64-bit dedup key: the first 8 bytes of pair_id (collision odds ~4e-5 at 40M pairs)."""
    return int(pair_id_hex[:16], 16)


def empty_row() -> dict:
    return {name: None for name in PAIR_SCHEMA.names}


def new_pair(conversation, chosen, rejected, *, source, source_record, record_pair_index=0, margin=None) -> dict:
    row = empty_row()
    row.update(
        conversation=conversation,
        chosen=chosen,
        rejected=rejected,
        margin=margin,
        source=source,
        source_record=source_record,
        record_pair_index=record_pair_index,
        status=KEPT,
        history=[],
    )
    if isinstance(chosen, str) and isinstance(rejected, str):
        row["pair_id"] = pair_id(conversation, chosen, rejected)
    return row


def quarantined_row(raw: str, reason: str, *, stage: str, source: str, source_record: str) -> dict:
    row = empty_row()
    row.update(
        status=QUARANTINED,
        stage=stage,
        reason=reason,
        raw=raw,
        source=source,
        source_record=source_record,
        record_pair_index=0,
        history=[],
    )
    return row


def to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA)


# A pair row is about 3 KB as Python objects and under 1 KB in Arrow, and Ray Data hands map_batches
# whole blocks by default (up to 128 MiB of Arrow): a block turned into rows at once would hold
# about half a GB of Python objects.
ROWS_PER_SLICE = 4096


def map_rows(batch: pa.Table, rows_fn, rows_per_slice: int = ROWS_PER_SLICE) -> pa.Table:
    """to_table(rows_fn(rows of batch)), a slice of the batch at a time, so that only one slice's rows
    are Python objects at once. rows_fn takes a list of row dicts and returns PAIR_SCHEMA row dicts."""
    return pa.concat_tables([to_table(rows_fn(batch.slice(start, rows_per_slice).to_pylist()))
                             for start in range(0, batch.num_rows, rows_per_slice)] or [to_table([])])


def prompt_text(row: dict) -> str:
    """The user turns of the conversation, joined (what decontamination and embedding read)."""
    return "\n".join(m["content"] for m in row["conversation"] or [] if m["role"] == "user")
