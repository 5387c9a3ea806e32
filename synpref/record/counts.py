"""Counts of a run, read back from its output so that they cannot drift from what was written.

Every row a job writes carries status / stage / reason. For a pipeline of stages s1..sn:
  in(s1) = records read;  in(s_k+1) = kept(s_k);  in(s) = kept(s) + dropped(s) + quarantined(s)
and the rows still kept at the end equal kept(sn). `stage_table` derives this from the output and
`reconcile` checks it. The `parse` stage counts input records; later stages count pairs (one rated
record can expand into several candidate pairs, counted at `binarize`).
"""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from synpref.record.schema import DROPPED, KEPT, QUARANTINED
from synpref.record.pairs_io import file_batches


COUNT_COLUMNS = ["status", "stage", "reason", "record_pair_index"]
COUNT_BATCH_ROWS = 65536


def outcome_counts(source) -> Counter:
    """Counter of (status, stage, reason, is_first_pair_of_record) over a written pairs folder (a
    path) or over pyarrow batches (a Ray Data stream); a batch without a status column is kept rows.

    A folder is read one file and one batch at a time (pairs_io.file_batches) and counted in Arrow."""
    counts: Counter = Counter()
    if isinstance(source, str):
        for status, batch in file_batches(source, COUNT_COLUMNS, COUNT_BATCH_ROWS):
            counts.update(batch_outcomes(batch, status))
        return counts
    for batch in source:
        counts.update(batch_outcomes(batch))
    return counts


def batch_outcomes(batch: pa.RecordBatch | pa.Table, status: str | None = None) -> Counter:
    """The outcome counts of one batch; `status`: the rows' status when the folder name holds it."""
    n = batch.num_rows

    def column(name: str, default, type_: pa.DataType) -> pa.Array:
        if name == "status" and status is not None:
            return pa.array([status] * n, type_)
        if name in batch.schema.names:
            return batch.column(name).cast(type_)
        return pa.nulls(n, type_) if default is None else pa.array([default] * n, type_)

    first = pc.fill_null(pc.equal(column("record_pair_index", 0, pa.int32()), 0), False)
    table = pa.table({"status": pc.fill_null(column("status", KEPT, pa.string()), KEPT),
                      "stage": column("stage", None, pa.string()), "reason": column("reason", None, pa.string()),
                      "first": first})
    grouped = table.group_by(["status", "stage", "reason", "first"], use_threads=False).aggregate(
        [([], "count_all")]).to_pydict()
    return Counter(dict(zip(zip(grouped["status"], grouped["stage"], grouped["reason"], grouped["first"]),
                            grouped["count_all"])))


def by_status_and_reason(counts: Counter) -> Counter:
    """The outcome counts folded to (status, reason): how many pairs each rule kept or dropped."""
    folded: Counter = Counter()
    for (status, _, reason, _), n in counts.items():
        folded[(status, reason)] += n
    return folded


def stage_table(counts: Counter, stages: list[str], *, unit: str = "records") -> list[dict]:
    """unit="records": the first stage counts input records (preprocess); "pairs": every row written
    was one input pair (later jobs, which neither split nor merge rows)."""
    rows = []
    if unit == "pairs":
        records = sum(counts.values())
    else:
        records = sum(n for (status, stage, reason, first), n in counts.items() if first)
    parse_quarantined = {k: n for k, n in counts.items() if k[1] == "parse" and k[0] == QUARANTINED}
    flowing = records
    for stage in stages:
        decided = {k: n for k, n in counts.items() if k[1] == stage and k[0] != KEPT}
        dropped = Counter({k[2]: n for k, n in decided.items() if k[0] == DROPPED})
        quarantined = Counter({k[2]: n for k, n in decided.items() if k[0] == QUARANTINED})
        if stage == "binarize":  # records -> candidate pairs
            flowing = sum(n for k, n in counts.items() if k not in parse_quarantined)
        n_in = flowing
        kept = n_in - sum(dropped.values()) - sum(quarantined.values())
        rows.append({"stage": stage, "in": n_in, "kept": kept, "dropped": dict(dropped),
                     "quarantined": dict(quarantined)})
        flowing = kept
    return rows


def reconcile(counts: Counter, table: list[dict]) -> dict:
    """Check the stage table against the rows: every row decided by a known stage or still kept."""
    final_kept = sum(n for k, n in counts.items() if k[0] == KEPT)
    known = {row["stage"] for row in table}
    unknown_stages = sorted({k[1] for k in counts if k[0] != KEPT and k[1] not in known})
    problems = []
    if table and table[-1]["kept"] != final_kept:
        problems.append(f"last stage kept {table[-1]['kept']} but {final_kept} rows are kept")
    if unknown_stages:
        problems.append(f"rows decided by stages not in the table: {unknown_stages}")
    if any(row["kept"] < 0 for row in table):
        problems.append("a stage kept a negative count")
    return {"ok": not problems, "problems": problems, "final_kept": final_kept}


def summary(counts: Counter, stages: list[str], *, unit: str = "records") -> dict:
    table = stage_table(counts, stages, unit=unit)
    totals = {s: sum(n for k, n in counts.items() if k[0] == s) for s in (KEPT, DROPPED, QUARANTINED)}
    return {
        "records_in": table[0]["in"] if table else 0,
        "rows_written": sum(counts.values()),
        "totals": totals,
        "stages": table,
        "reconcile": reconcile(counts, table),
    }


def format_table(stats: dict) -> str:
    lines = [f"{'stage':<18} {'in':>10} {'kept':>10} {'dropped':>9} {'quarant.':>9}  reasons"]
    for row in stats["stages"]:
        reasons = {**row["dropped"], **{f"Q:{k}": v for k, v in row["quarantined"].items()}}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:6])
        lines.append(f"{row['stage']:<18} {row['in']:>10} {row['kept']:>10} {sum(row['dropped'].values()):>9} "
                     f"{sum(row['quarantined'].values()):>9}  {shown}")
    verdict = "counts reconcile" if stats["reconcile"]["ok"] else "COUNTS DO NOT RECONCILE: " + "; ".join(stats["reconcile"]["problems"])
    lines.append(f"rows written {stats['rows_written']} = kept {stats['totals']['kept']} + dropped "
                 f"{stats['totals']['dropped']} + quarantined {stats['totals']['quarantined']}; {verdict}")
    return "\n".join(lines)


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)
