"""Human verification for Stage 1's gold set D_gold (DESIGN.md section 2), in two steps around people.

action=export  picks `export.n` kept pairs in verification order (objective before subjective, low
               before high controversiality) and writes them for annotators with the protocol sections
               they need: our worksheet (JSONL to fill in + a readable Markdown), a Label Studio import
               and an Argilla 2 dataset.
action=import  reads the verdicts (our JSONL, a Label Studio JSON export or an Argilla export; a file or
               a folder), takes the majority per pair (a tie is undecidable) and writes D_gold: chosen
               pairs as they are, flipped pairs swapped (new pair_id), undecidable pairs dropped; merged
               with an earlier D_gold (`gold.existing`), where a new verdict replaces the old one.

Reads:  export: data.input -- Parquet pairs (PAIR_SCHEMA; kept rows, is_gold rows skipped)
        import: data.exported -- an export folder (its selected.parquet); verdicts; gold.existing
Writes: export: data.output/ worksheet.jsonl, worksheet.md, protocol.md, label_studio_tasks.json,
                label_studio_config.xml, argilla_records.json, argilla_settings.json, selected.parquet
        import: data.output/pairs/status=kept|dropped/ (PAIR_SCHEMA: the new D_gold + dropped undecidables),
                verdicts.jsonl (every verdict read, normalised)
        both:   stats.json, config.yaml, _SUCCESS (synpref.runner.runs); a re-run of a finished output skips
No Ray: the files are small.

    python jobs/verify.py action=export data.input=out/ann/pairs data.output=out/verify/round1 export.n=200
    python jobs/verify.py action=import data.exported=out/verify/round1 verdicts=out/verify/round1/verdicts \
        gold.existing=out/gold0/pairs data.output=out/gold1
"""

import hashlib
import heapq
import json
import sys
from collections import Counter
from pathlib import Path

import hydra
import pyarrow.compute as pc
import pyarrow.parquet as pq
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.annotation.protocol import human_protocol, load_protocol, protocol_text  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.record.counts import format_table, outcome_counts, summary  # noqa: E402
from synpref.record.ops import both_pair_ids  # noqa: E402
from synpref.record.pairs_io import iter_rows, read_pairs, write_pairs  # noqa: E402
from synpref.record.schema import KEPT, to_table  # noqa: E402
from synpref.runner.errors import BadConfig, JobError, WaitingForHumans  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402
from synpref.verification.export import SELECTED, write_argilla, write_label_studio, write_worksheet  # noqa: E402
from synpref.verification.merge import STAGE, merge_into_existing, merge_verdicts  # noqa: E402
from synpref.verification.order import ORDERS, order_key  # noqa: E402
from synpref.verification.verdicts import VERDICTS, read_verdicts, verdict_files  # noqa: E402

ACTIONS = ("export", "import")
FORMATS = ("worksheet", "label_studio", "argilla")
ORDER_COLUMNS = ["pair_id", "objectivity", "controversiality", "is_gold", "status"]


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.action not in ACTIONS:
        problems.append(f"action={cfg.action!r}: choose export or import")
    if cfg.action == "export":
        if not cfg.data.input:
            problems.append("data.input: give the Parquet pairs to verify, e.g. data.input=out/ann/pairs")
        if cfg.export.order not in ORDERS:
            problems.append(f"export.order={cfg.export.order!r}: choose from {list(ORDERS)}")
        if cfg.export.n < 1:
            problems.append(f"export.n={cfg.export.n}: export at least 1 pair")
        unknown = [f for f in cfg.export.formats if f not in FORMATS]
        if unknown or not cfg.export.formats:
            problems.append(f"export.formats={list(cfg.export.formats)}: choose from {list(FORMATS)}")
    if cfg.action == "import" and not cfg.data.exported:
        problems.append("data.exported: give the folder an action=export run wrote, "
                        "e.g. data.exported=out/verify/round1")
    if cfg.gold.existing:
        existing, output = storage.absolute(cfg.gold.existing), storage.absolute(cfg.data.output).rstrip("/")
        if existing == output or existing.startswith(output + "/"):
            problems.append(f"gold.existing={cfg.gold.existing} lies inside data.output={cfg.data.output}: "
                            "the import rewrites data.output, so write the new D_gold to a new folder")
    return problems


def pick(paths, n: int, seed: int, skip_ids: set[str], include_gold: bool, order: str) -> tuple[list[str], dict]:
    """The first n pair_ids in verification order, reading the ordering columns only (bounded heap)."""
    heap, in_heap, counts = [], set(), dict(rows_read=0, not_kept=0, gold=0, already_gold=0, duplicate=0)
    for row in iter_rows(paths, ORDER_COLUMNS):
        counts["rows_read"] += 1
        if row["status"] != KEPT:
            counts["not_kept"] += 1
        elif row.get("is_gold") and not include_gold:
            counts["gold"] += 1
        elif row["pair_id"] in skip_ids:
            counts["already_gold"] += 1
        elif row["pair_id"] in in_heap:
            counts["duplicate"] += 1
        else:
            item = (tuple(-x for x in order_key(row, seed, order)), row["pair_id"])  # heap[0]: the latest in order
            if len(heap) < n:
                heapq.heappush(heap, item)
                in_heap.add(row["pair_id"])
            elif item > heap[0]:
                in_heap.discard(heapq.heappushpop(heap, item)[1])
                in_heap.add(row["pair_id"])
    skipped = ("not_kept", "gold", "already_gold", "duplicate")
    counts["candidates"] = counts["rows_read"] - sum(counts[k] for k in skipped)
    return [pid for _, pid in heap], counts


def export(cfg: DictConfig, output: str) -> dict:
    existing = read_pairs(cfg.gold.existing, status=None) if cfg.gold.existing else []
    skip_ids = set() if cfg.export.include_gold else {i for row in existing for i in both_pair_ids(row)}
    ids, counts = pick(cfg.data.input, cfg.export.n, cfg.export.seed, skip_ids, cfg.export.include_gold,
                       cfg.export.order)
    if not ids:
        raise BadConfig([f"data.input={cfg.data.input}: no pair to verify ({counts})"], job="verify")
    rows, seen = [], set()
    for row in read_pairs(cfg.data.input, status=None, filter=pc.field("pair_id").isin(ids)):
        wanted = (row["status"] or KEPT) == KEPT and (cfg.export.include_gold or not row["is_gold"])
        if wanted and row["pair_id"] not in seen:
            seen.add(row["pair_id"])
            rows.append(row)
    rows.sort(key=lambda row: order_key(row, cfg.export.seed, cfg.export.order))

    protocol = human_protocol(load_protocol(cfg.protocol), rows)
    storage.write_text(storage.join(output, "protocol.md"), f"# Verification protocol\n\n{protocol}\n")
    written = []
    if "worksheet" in cfg.export.formats:
        written += write_worksheet(rows, output, protocol)
    if "label_studio" in cfg.export.formats:
        written += write_label_studio(rows, output)
    if "argilla" in cfg.export.formats:
        written += write_argilla(rows, output, guidelines=protocol, min_submitted=cfg.export.annotators_per_pair)
    fs, path = storage.filesystem(storage.join(output, SELECTED))
    pq.write_table(to_table(rows), path, filesystem=fs)

    stats = {"action": "export", **counts, "exported": len(rows),
             "by_objectivity": dict(Counter(str(r["objectivity"]) for r in rows)),
             "by_controversiality": dict(Counter(str(r["controversiality"]) for r in rows)),
             "files": [p.rsplit("/", 1)[-1] for p in written] + ["protocol.md", SELECTED],
             "result": f"{len(rows)} of {counts['candidates']} candidate pairs exported for verification"}
    print(f"{len(rows)} of {counts['candidates']} candidate pairs exported to {output} "
          f"(read {counts['rows_read']}: skipped not kept {counts['not_kept']}, gold {counts['gold']}, "
          f"already in gold.existing {counts['already_gold']}, duplicate {counts['duplicate']})")
    print(f"by objectivity {stats['by_objectivity']}; by controversiality {stats['by_controversiality']}")
    print(f"next: annotators fill {output}/worksheet.jsonl (see worksheet.md) or use the Label Studio / Argilla "
          f"files,\n"
          f"      save verdicts under {output}/verdicts/, then run\n"
          f"      python jobs/verify.py action=import data.exported={output} verdicts={output}/verdicts "
          f"data.output=<gold>")
    return stats


class NoVerdicts(WaitingForHumans):
    """The import has nothing to read yet: what to fill in, where to put it, the command to re-run."""

    def __init__(self, where: str, exported: str, detail: str):
        self.export, self.verdicts = exported, where
        JobError.__init__(
            self, f"no verdicts to import: {detail} ({where}).\n"
                  f"Fill in \"verdict\" ({' / '.join(VERDICTS)}), \"annotator\" and \"notes\" in a copy of "
                  f"{exported}/worksheet.jsonl saved as {exported}/verdicts/<your-name>.jsonl, or put a Label "
                  f"Studio JSON export or an Argilla records export there; then re-run:\n"
                  f"  python jobs/verify.py action=import data.exported={exported} verdicts={exported}/verdicts "
                  f"data.output=<gold folder>")


def import_verdicts(cfg: DictConfig, output: str, where: str, exported: str) -> dict:
    rows = read_pairs(storage.join(exported, SELECTED), status=None)
    counts = {}
    verdicts = read_verdicts(where, counts)
    if not verdicts:
        raise NoVerdicts(where, exported, f"{counts['records']} record(s) in {counts['files']} file(s), "
                         "none with a verdict yet")
    gold, dropped, stats = merge_verdicts(rows, verdicts)
    if not stats["pairs_verified"]:
        raise BadConfig([f"verdicts={where}: none of the {len(verdicts)} verdicts names a pair of "
                         f"{exported}/{SELECTED} (e.g. {stats['unknown_pair_ids']}): are they from another export?"],
                        job="verify")
    existing = read_pairs(cfg.gold.existing, status=None) if cfg.gold.existing else []
    gold_out, dropped_out, union = merge_into_existing(existing, gold, dropped)

    pairs = storage.join(output, "pairs")
    write_pairs(gold_out + dropped_out, pairs)
    storage.write_text(storage.join(output, "verdicts.jsonl"),
                       "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in verdicts))
    stats.update(summary(outcome_counts(pairs), [STAGE], unit="pairs"))
    stats.update(action="import", verdicts=where, existing=cfg.gold.existing, union=union,
                 verdict_files=counts["files"], verdict_records_read=counts["records"],
                 empty_verdicts=counts["empty"], replaced_verdicts=counts["replaced"],
                 files_skipped=counts["files_skipped"], gold_rows=len(gold_out), dropped_rows=len(dropped_out))
    checks = {
        "verified = gold added + re-verified + undecidable added":
            (stats["pairs_verified"], union["gold_added"] + union["re_verified"] + union["undecidable_added"]),
        "exported = verified + not yet verified":
            (stats["pairs_exported"], stats["pairs_verified"] + stats["not_yet_verified"]),
        "gold rows = existing gold carried + chosen + flipped":
            (len(gold_out), union["existing_gold_carried"] + stats["chosen"] + stats["flipped"]),
        "rows written = gold rows + dropped rows": (stats["rows_written"], len(gold_out) + len(dropped_out)),
    }
    stats["reconcile"]["problems"] += [f"{name}: {a} != {b}" for name, (a, b) in checks.items() if a != b]
    stats["reconcile"]["ok"] = not stats["reconcile"]["problems"]
    stats["result"] = (f"D_gold {len(gold_out)} pairs ({stats['chosen']} chosen, {stats['flipped']} flipped, "
                       f"{stats['undecidable']} undecidable of {stats['pairs_verified']} verified now)")
    print_import(stats)
    return stats


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_import(stats: dict) -> None:
    print(format_table(stats))
    u, agree, hj = stats["union"], stats["agreement"], stats["human_vs_judge"]
    lines = [
        f"{'verdicts':<28} {stats['verdicts_read']:>6}  from {stats['verdict_files']} file(s); "
        f"{stats['empty_verdicts']} empty (not yet verified), {stats['replaced_verdicts']} replaced by a later one, "
        f"{stats['verdicts_for_unknown_pairs']} for pairs not in the export",
        f"{'pairs exported':<28} {stats['pairs_exported']:>6}",
        f"{'pairs verified':<28} {stats['pairs_verified']:>6}  chosen {stats['chosen']}, flipped {stats['flipped']}, "
        f"undecidable {stats['undecidable']} (majority ties {stats['majority_ties_undecidable']})",
        f"{'not yet verified':<28} {stats['not_yet_verified']:>6}",
        f"{'D_gold rows':<28} {stats['gold_rows']:>6}  = {u['existing_gold_carried']} carried + "
        f"{stats['chosen'] + stats['flipped']} new or re-verified; gold added {u['gold_added']}, "
        f"re-verified {u['re_verified']} ({u['re_verified_changed']} changed), "
        f"undecidable added {u['undecidable_added']}",
        f"{'original label right':<28} {fmt(stats['original_label_correct']):>6}  (human vs data, decided pairs)",
        f"{'human vs judge':<28} {fmt(hj['agreement']):>6}  on {hj['compared']} pairs "
        f"(judge tie {hj['judge_tie']}, no judge label {hj['no_judge_label']})",
        f"{'annotator agreement':<28} {fmt(agree['pairwise_agreement']):>6}  pairwise, "
        f"{agree['pairs_with_2plus_annotators']} pairs with 2+ annotators",
    ]
    if agree["kappa_top_two"]:
        k = agree["kappa_top_two"]
        lines.append(f"{'Cohen kappa':<28} {fmt(k['cohen_kappa']):>6}  {k['annotators'][0]} vs {k['annotators'][1]} "
                     f"on {k['shared_pairs']} shared pairs")
    lines.append(f"{'annotator':<28} {'total':>6}  " + "  ".join(f"{v:>11}" for v in VERDICTS))
    for name, c in stats["annotators"].items():
        lines.append(f"{name[:28]:<28} {c['total']:>6}  " + "  ".join(f"{c[v]:>11}" for v in VERDICTS))
    print("\n".join(lines))


def files_digest(files: list[str]) -> str:
    digest = hashlib.sha256()
    for f in files:
        fs, path = storage.filesystem(f)
        with fs.open_input_stream(path) as stream:
            digest.update(f.encode() + b"\0" + stream.read() + b"\0")
    return digest.hexdigest()[:16]


@hydra.main(config_path="../conf", config_name="verify", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    extra = {}
    if cfg.action == "export":
        extra = {"input": [storage.absolute(p) for p in storage.as_list(cfg.data.input)],
                 "protocol_text": protocol_text(cfg.protocol)}
    elif cfg.action == "import":
        exported = storage.absolute(cfg.data.exported)
        if not storage.exists(storage.join(exported, SELECTED)):
            raise BadConfig([f"data.exported={cfg.data.exported}: no {SELECTED}; "
                             "give the output folder of an action=export run"], job="verify")
        where = storage.absolute(cfg.verdicts or storage.join(exported, "verdicts"))
        files = verdict_files(where)
        if not files:
            raise NoVerdicts(where, exported, "no *.jsonl or *.json file there")
        # the verdicts and the exported pairs are part of the run: new verdicts into the same output need overwrite=true
        extra = {"inputs_digest": files_digest(files + [storage.join(exported, SELECTED)])}
    run = JobRun.start(cfg, job="verify", output=cfg.data.output, check=check_config, extra=extra)
    if run.done:
        return run.stats
    if cfg.action == "export":
        return run.finish(export(cfg, run.output))
    return run.finish(import_verdicts(cfg, run.output, where, exported))


if __name__ == "__main__":
    main()
