"""Pre-processing of raw records into pairs (DESIGN.md section 1), one Ray Data batch at a time.

Steps, in order (each names the rows it drops in the `stage` column):
  parse             raw line -> pair rows; unreadable records are quarantined with their reason
  binarize          rated completions -> pairs; tied candidates are dropped (tied_scores)
  require_responses drop pairs with a missing chosen/rejected response (or identical ones)
  decontaminate     drop pairs sharing a 13-gram with a benchmark first-turn prompt
  dedup             global exact dedup on (conversation, chosen, rejected)
"""

from __future__ import annotations

import os

import pyarrow as pa

from synpref.preprocess.formats import Malformed, decode_line, parse_record
from synpref.record.schema import quarantined_row, to_table
from synpref.preprocess.filters import Decontaminate, Deduplicate, RequireResponses

STAGES = ["parse", "binarize", "require_responses", "decontaminate", "dedup"]
RAW_KEEP_CHARS = 1 << 16  # a quarantined row keeps this much of its raw input


def source_name(source_record: str) -> str:
    name = os.path.basename(source_record.rsplit(":", 1)[0].split("#", 1)[0])
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name


def parse_lines(lines: list[bytes], source_records: list[str], *, limits: dict, binarize: str) -> list[dict]:
    rows = []
    for line, record_id in zip(lines, source_records):
        source = source_name(record_id)
        try:
            record = decode_line(line, limits["max_line_bytes"])
            rows.extend(parse_record(record, source=source, source_record=record_id, limits=limits, binarize=binarize))
        except Malformed as err:
            raw = line[:RAW_KEEP_CHARS].decode("utf-8", errors="replace")
            rows.append(quarantined_row(raw, err.reason, stage="parse", source=source, source_record=record_id))
    return rows


class PreprocessBatch:
    """Ray Data callable class: raw records -> PAIR_SCHEMA rows with every outcome marked.

    Held in an actor pool so that the n-gram index is loaded once per actor."""

    def __init__(self, *, limits: dict, binarize: str, ngram_index=None, decontam_fields="prompt", seen_keys=None):
        self.limits = dict(limits)
        self.binarize = binarize
        self.steps = [RequireResponses()]
        if ngram_index is not None:
            self.steps.append(Decontaminate(ngram_index, decontam_fields))
        if seen_keys is not None:
            self.steps.append(Deduplicate(seen_keys))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = parse_lines(batch.column("line").to_pylist(), batch.column("source_record").to_pylist(),
                           limits=self.limits, binarize=self.binarize)
        for step in self.steps:
            step(rows)
        try:
            return to_table(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError, OverflowError) as err:
            # a value the parser let through but Arrow refuses: quarantine that row, keep the batch
            return to_table([self._arrow_safe(row, err) for row in rows])

    @staticmethod
    def _arrow_safe(row: dict, err: Exception) -> dict:
        try:
            to_table([row])
            return row
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError, OverflowError):
            raw = repr({k: row.get(k) for k in ("conversation", "chosen", "rejected")})[:RAW_KEEP_CHARS]
            bad = quarantined_row(raw, f"arrow_rejected: {type(err).__name__}", stage="parse",
                                  source=row["source"], source_record=row["source_record"])
            bad["record_pair_index"] = row["record_pair_index"]
            return bad
