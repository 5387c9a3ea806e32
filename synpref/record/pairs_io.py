"""The named sets of the curation loop (D_un, D_gold, D_silver) as PAIR_SCHEMA Parquet folders.

Stage 1's sets are small (thousands to a few hundred thousand pairs in the paper), so they are read
into memory as Python rows; the pool itself streams through Ray Data in the jobs. A set's members are
matched by `unordered_key`, so a pair and its flip (a human or judge reversed it) count as one pair.
"""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from synpref.record import storage
from synpref.record.schema import KEPT, PAIR_SCHEMA, pair_id, to_table, unordered_key


def kept_folder(path: str) -> str:
    """A job's pairs/ folder -> its status=kept part (a plain Parquet folder is taken whole)."""
    kept = storage.join(path, f"status={KEPT}")
    return kept if storage.exists(kept) else path


def read_kept(path: str, columns: list[str] | None = None) -> list[dict]:
    """The kept rows of a pairs folder (every PAIR_SCHEMA column unless `columns`)."""
    fs, local = storage.filesystem(storage.absolute(kept_folder(path)))
    dataset = pads.dataset(local, filesystem=fs, format="parquet", partitioning="hive")
    names = [c for c in (columns or PAIR_SCHEMA.names) if c in dataset.schema.names]
    rows = dataset.to_table(columns=names).to_pylist()
    for row in rows:
        row["status"] = KEPT
    return rows


def write_set(rows: list[dict], path: str) -> None:
    """rows -> <path>/status=<status>/part-0.parquet (PAIR_SCHEMA), replacing what was there."""
    storage.delete_dir(path)
    table = to_table(rows) if rows else PAIR_SCHEMA.empty_table()
    fs, local = storage.filesystem(storage.absolute(path))
    statuses = sorted({r["status"] for r in rows}) or [KEPT]
    for status in statuses:
        part = table.filter(pc.equal(table["status"], status))
        fs.create_dir(f"{local}/status={status}", recursive=True)
        pq.write_table(part, f"{local}/status={status}/part-0.parquet", filesystem=fs)


def key(row: dict) -> str:
    return unordered_key(row["conversation"], row["chosen"], row["rejected"])


def keys(rows: list[dict]) -> set[str]:
    return {key(r) for r in rows}


def flipped(row: dict, *, stage: str, reason: str) -> dict:
    """The pair with chosen and rejected swapped (a new pair_id: it is another ordered pair), the
    decision that flipped it appended to its history."""
    out = dict(row)
    out.update(chosen=row["rejected"], rejected=row["chosen"],
               pair_id=pair_id(row["conversation"], row["rejected"], row["chosen"]),
               stage=stage, status=KEPT, reason=reason,
               # scores and votes were about the other order
               rm_scores=None, margin=None, judge_votes=None, judge_label=None, judge_agreement=None)
    out["history"] = list(row.get("history") or []) + [
        {"stage": stage, "status": "flipped", "reason": f"{reason}; was {row['pair_id']}"}]
    return out
