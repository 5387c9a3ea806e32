"""Human verification for D_gold (synpref/verification/, jobs/verify.py): verification order, the
three export formats, reading verdicts back from each tool, the majority merge, agreement figures, and
the job's export -> import on a tiny Parquet fixture. No Ray."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import run_job

from synpref.annotation.protocol import human_protocol, load_protocol
from synpref.record.ops import pair_key
from synpref.record.schema import PAIR_SCHEMA, new_pair, pair_id, to_table
from synpref.runner.errors import WAITING_FOR_HUMANS, WaitingForHumans
from synpref.runner.job import exits_with_status
from synpref.verification.export import write_argilla, write_label_studio, write_worksheet
from synpref.verification.merge import HUMAN_CHOSE, HUMAN_FLIPPED, cohen_kappa, majority_verdict, merge_into_existing, merge_verdicts
from synpref.verification.order import verification_order
from synpref.verification.verdicts import VERDICTS, read_verdicts
from synpref.verification.waiting import ensure_verdicts

REPO = Path(__file__).resolve().parents[2]


def pair(i, objectivity="objective", controversiality="low", **extra):
    row = new_pair([{"role": "user", "content": f"What is {i} + {i}?"}], f"It is {2 * i}.", f"It is {2 * i + 1}.",
                   source="t", source_record=f"t.jsonl:{i}")
    row.update(task_category="math", objectivity=objectivity, controversiality=controversiality,
               desired_attributes=["correct result"], guideline="The right sum wins.", stage="annotate")
    row.update(extra)
    return row


def fill(path: Path, verdicts: dict, annotator: str = "") -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        if line["pair_id"] in verdicts:
            line.update(verdict=verdicts[line["pair_id"]], annotator=annotator, notes="checked the sum")
    return lines


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# ---------------------------------------------------------------- order and export


def test_order_is_objective_then_low_controversiality_first_unknown_last_and_seeded():
    rows = [pair(0, "subjective", "low"), pair(1, "objective", "high"), pair(2, None, "low"),
            pair(3, "objective", "low"), pair(4, "objective", None), pair(5, "subjective", "medium"),
            pair(6, "objective", "medium")]
    ordered = [(r["objectivity"], r["controversiality"]) for r in verification_order(rows)]
    assert ordered == [("objective", "low"), ("objective", "medium"), ("objective", "high"), ("objective", None),
                       ("subjective", "low"), ("subjective", "medium"), (None, "low")]
    same = [pair(i) for i in range(20)]
    first = [r["pair_id"] for r in verification_order(same, seed=0)]
    assert first == [r["pair_id"] for r in verification_order(list(reversed(same)), seed=0)]  # deterministic
    assert first != [r["pair_id"] for r in verification_order(same, seed=1)]  # the seed breaks ties


def test_worksheet_has_the_human_protocol_every_pair_and_parses_back(tmp_path):
    rows = [pair(1), pair(2, "subjective", "high", rejected="has ``` a fence ```` inside")]
    protocol = human_protocol(load_protocol(str(REPO / "conf" / "protocol.md")), rows)
    assert "### Tools (human annotators only)" in protocol and "### Order of work (human annotators only)" in protocol
    assert "### Controversiality: high" in protocol and "### Task category: coding" not in protocol
    write_worksheet(rows, str(tmp_path), protocol)
    lines = [json.loads(line) for line in (tmp_path / "worksheet.jsonl").read_text().splitlines()]
    assert [line["pair_id"] for line in lines] == [r["pair_id"] for r in rows]
    assert lines[1]["response_a"] == rows[1]["chosen"] and lines[1]["response_b"] == rows[1]["rejected"]
    assert lines[0]["verdict"] == lines[0]["annotator"] == lines[0]["notes"] == ""
    assert lines[0]["guideline"] == "The right sum wins." and lines[0]["conversation"] == rows[0]["conversation"]
    md = (tmp_path / "worksheet.md").read_text()
    assert md.count("Full reliance on LLMs") == 1 and md.index("Core principles") < md.index("Pair 1 of 2")
    assert all(r["pair_id"] in md for r in rows) and "`````text\nhas ``` a fence ```` inside\n`````" in md
    assert '"flipped"' in md and "action=import" in md


def test_label_studio_tasks_and_config_parse(tmp_path):
    rows = [pair(1), pair(2)]
    write_label_studio(rows, str(tmp_path))
    tasks = json.loads((tmp_path / "label_studio_tasks.json").read_text())
    assert [t["data"]["pair_id"] for t in tasks] == [r["pair_id"] for r in rows]
    data = tasks[0]["data"]
    assert data["prompt"] == "What is 1 + 1?" and data["response_a"] == rows[0]["chosen"]
    assert data["objectivity"] == "objective" and data["desired_attributes"] == "correct result"
    root = ET.fromstring((tmp_path / "label_studio_config.xml").read_text())
    choices = root.find("Choices")
    assert choices.get("name") == "verdict" and [c.get("value") for c in choices.findall("Choice")] == list(VERDICTS)
    assert root.find("TextArea").get("name") == "notes"
    variables = {el.get("value")[1:] for el in root.iter("Text")}
    assert variables <= set(data)  # every $variable of the config is a task data key


def test_argilla_records_and_settings_parse(tmp_path):
    rows = [pair(1)]
    write_argilla(rows, str(tmp_path), guidelines="the protocol")
    records = json.loads((tmp_path / "argilla_records.json").read_text())
    assert records[0]["id"] == rows[0]["pair_id"]
    assert set(records[0]["fields"]) == {"prompt", "response_a", "response_b"}
    assert records[0]["metadata"]["controversiality"] == "low"
    settings = json.loads((tmp_path / "argilla_settings.json").read_text())
    questions = {q["name"]: q for q in settings["questions"]}
    assert questions["verdict"]["settings"]["type"] == "label_selection"
    assert [o["value"] for o in questions["verdict"]["settings"]["options"]] == list(VERDICTS)
    assert questions["notes"]["settings"]["type"] == "text" and settings["guidelines"] == "the protocol"
    assert [f["name"] for f in settings["fields"]] == ["prompt", "response_a", "response_b"]


# ---------------------------------------------------------------- verdicts in


def test_filled_worksheet_round_trips(tmp_path):
    rows = [pair(1), pair(2), pair(3)]
    write_worksheet(rows, str(tmp_path), "protocol")
    lines = fill(tmp_path / "worksheet.jsonl", {rows[0]["pair_id"]: "chosen", rows[1]["pair_id"]: " Flipped "})
    lines[1]["annotator"] = "bob"
    counts = {}
    verdicts = read_verdicts(str(write_jsonl(tmp_path / "verdicts" / "alice.jsonl", lines)), counts)
    assert verdicts == [
        {"pair_id": rows[0]["pair_id"], "verdict": "chosen", "annotator": "alice", "notes": "checked the sum"},
        {"pair_id": rows[1]["pair_id"], "verdict": "flipped", "annotator": "bob", "notes": "checked the sum"}]
    assert counts["records"] == 3 and counts["empty"] == 1  # the third line is not yet verified


LS_EXPORT = [
    {"id": 1, "data": {"pair_id": "p1", "prompt": "q"}, "annotations": [
        {"id": 11, "completed_by": 7, "was_cancelled": False, "result": [
            {"from_name": "verdict", "to_name": "prompt", "type": "choices", "value": {"choices": ["flipped"]}},
            {"from_name": "notes", "to_name": "prompt", "type": "textarea", "value": {"text": ["B is right"]}}]},
        {"id": 12, "completed_by": 8, "was_cancelled": True, "result": []},
        {"id": 13, "completed_by": {"id": 9, "email": "c@x.org"}, "result": [
            {"from_name": "verdict", "to_name": "prompt", "type": "choices", "value": {"choices": ["chosen"]}}]}]},
    {"id": 2, "data": {"pair_id": "p2", "prompt": "q"}, "annotations": []},
]


def test_label_studio_export_reads_choices_notes_and_annotators(tmp_path):
    path = tmp_path / "project-1-at-2025.json"
    path.write_text(json.dumps(LS_EXPORT))
    counts = {}
    assert read_verdicts(str(path), counts) == [
        {"pair_id": "p1", "verdict": "flipped", "annotator": "7", "notes": "B is right"},
        {"pair_id": "p1", "verdict": "chosen", "annotator": "c@x.org", "notes": ""}]
    assert counts["empty"] == 2  # the cancelled annotation and the unannotated task


ARGILLA_NESTED = [
    {"id": "p1", "fields": {"prompt": "q", "response_a": "a", "response_b": "b"}, "metadata": {}, "suggestions": {},
     "responses": {"verdict": [{"value": "undecidable", "user_id": "u-1"}, {"value": "chosen", "user_id": "u-2"},
                               {"value": "flipped", "user_id": "u-3", "status": "draft"}],
                   "notes": [{"value": "both wrong", "user_id": "u-1"}]},
     "vectors": {}, "_server_id": "s-1"},
    {"id": "p2", "fields": {"prompt": "q", "response_a": "a", "response_b": "b"}, "responses": {}},
]
ARGILLA_FLAT = [{"id": "p3", "_server_id": "s-3", "prompt": "q", "response_a": "a", "response_b": "b",
                 "verdict.responses": ["flipped"], "verdict.responses.users": ["u-1"],
                 "verdict.responses.status": ["submitted"], "notes.responses": ["B"], "notes.responses.users": ["u-1"]}]


def test_argilla_exports_read_per_user(tmp_path):
    (tmp_path / "nested.json").write_text(json.dumps(ARGILLA_NESTED))
    (tmp_path / "flat.json").write_text(json.dumps(ARGILLA_FLAT))
    (tmp_path / "stats.json").write_text(json.dumps({"pairs": 3}))  # not a verdict file: skipped, listed
    counts = {}
    verdicts = read_verdicts(str(tmp_path), counts)  # a folder reads every *.json / *.jsonl in it
    assert sorted((v["pair_id"], v["annotator"], v["verdict"], v["notes"]) for v in verdicts) == [
        ("p1", "u-1", "undecidable", "both wrong"), ("p1", "u-2", "chosen", ""), ("p3", "u-1", "flipped", "B")]
    assert counts["files"] == 2 and counts["empty"] == 2 and counts["files_skipped"] == [str(tmp_path / "stats.json")]


def test_the_export_folder_itself_reads_as_verdicts_when_the_worksheet_is_filled_in_place(tmp_path):
    rows = [pair(1), pair(2)]
    write_worksheet(rows, str(tmp_path), "protocol")
    write_label_studio(rows, str(tmp_path))
    write_argilla(rows, str(tmp_path))
    write_jsonl(tmp_path / "worksheet.jsonl", fill(tmp_path / "worksheet.jsonl", {rows[0]["pair_id"]: "chosen"}, "ann"))
    counts = {}
    verdicts = read_verdicts(str(tmp_path), counts)
    assert [(v["pair_id"], v["annotator"]) for v in verdicts] == [(rows[0]["pair_id"], "ann")]
    assert counts["files_skipped"] == [str(tmp_path / "argilla_settings.json")]
    assert counts["empty"] == 5  # 1 worksheet line, 2 Label Studio tasks, 2 Argilla records: none answered yet


def test_invalid_verdicts_raise_naming_where(tmp_path):
    lines = [{"pair_id": "p1", "verdict": "chosen"}, {"pair_id": "p2", "verdict": "maybe"}]
    with pytest.raises(ValueError, match=r"v\.jsonl:2 \(pair p2\): verdict 'maybe'"):
        read_verdicts(str(write_jsonl(tmp_path / "v.jsonl", lines)))
    bad = [{**LS_EXPORT[0], "annotations": [{"completed_by": 1, "result": [
        {"from_name": "verdict", "type": "choices", "value": {"choices": ["B"]}}]}]}]
    (tmp_path / "ls.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"ls\.json#0 \(pair p1, annotation 0\): verdict 'B'"):
        read_verdicts(str(tmp_path / "ls.json"))


def test_a_later_verdict_of_the_same_annotator_replaces_the_earlier(tmp_path):
    lines = [{"pair_id": "p1", "verdict": "chosen", "annotator": "a"},
             {"pair_id": "p1", "verdict": "flipped", "annotator": "a"}]
    counts = {}
    assert [v["verdict"] for v in read_verdicts(str(write_jsonl(tmp_path / "v.jsonl", lines)), counts)] == ["flipped"]
    assert counts["replaced"] == 1


# ---------------------------------------------------------------- merge


def verdict(p, v, who):
    return {"pair_id": p["pair_id"], "verdict": v, "annotator": who, "notes": ""}


def test_merge_swaps_flipped_pairs_drops_undecidable_and_takes_the_majority():
    labels = ["chosen", "chosen", "rejected", None, "tie"]
    a, b, c, d, e = (pair(i, judge_label=label) for i, label in enumerate(labels))
    b["rm_scores"] = [{"model": "best", "r_chosen": 1.0, "r_rejected": 0.0, "p": 0.75}]
    b["margin"] = 2.0
    verdicts = [verdict(a, "chosen", "x"), verdict(a, "chosen", "y"), verdict(a, "flipped", "z"),  # majority chosen
                verdict(b, "flipped", "x"), verdict(b, "flipped", "y"),
                verdict(c, "chosen", "x"), verdict(c, "flipped", "y"),  # a tie: undecidable
                verdict(e, "chosen", "x"),
                {"pair_id": "elsewhere", "verdict": "chosen", "annotator": "x", "notes": ""}]
    gold, dropped, stats = merge_verdicts([a, b, c, d, e], verdicts)
    assert [g["human_label"] for g in gold] == ["chosen", "flipped", "chosen"]
    flipped = gold[1]
    assert (flipped["chosen"], flipped["rejected"]) == (b["rejected"], b["chosen"])
    assert flipped["pair_id"] == pair_id(b["conversation"], b["rejected"], b["chosen"]) != b["pair_id"]
    assert pair_key(flipped) == pair_key(b)  # the same pair, so it is matched back to the pool
    assert flipped["history"][-1:] == [{"stage": "annotate", "status": "kept", "reason": None}]
    assert (flipped["status"], flipped["stage"], flipped["reason"]) == ("kept", "verify", HUMAN_FLIPPED)
    assert flipped["is_gold"]
    assert flipped["judge_label"] == "rejected" and flipped["margin"] is None
    assert flipped["rm_scores"] == [{"model": "best", "r_chosen": 0.0, "r_rejected": 1.0, "p": 0.25}]
    assert gold[0]["pair_id"] == a["pair_id"] and gold[0]["reason"] == HUMAN_CHOSE
    assert [(r["pair_id"], r["status"], r["stage"], r["reason"], r["human_label"]) for r in dropped] == [
        (c["pair_id"], "dropped", "verify", "undecidable", "undecidable")]
    assert (stats["pairs_verified"], stats["chosen"], stats["flipped"], stats["undecidable"]) == (4, 2, 1, 1)
    assert stats["not_yet_verified"] == 1 and stats["majority_ties_undecidable"] == 1
    assert stats["verdicts_for_unknown_pairs"] == 1 and stats["unknown_pair_ids"] == ["elsewhere"]
    assert stats["original_label_correct"] == pytest.approx(2 / 3)
    assert stats["human_vs_judge_agreement"] == 0.5
    # human vs judge on decided pairs with a chosen/rejected judge label: a chosen/chosen agree, b flipped/chosen not
    assert stats["human_vs_judge"] == {"compared": 2, "agree": 1, "agreement": 0.5, "judge_tie": 1, "no_judge_label": 0}
    assert stats["annotators"]["x"] == {"chosen": 3, "flipped": 1, "undecidable": 0, "total": 4}
    for row in gold + dropped:
        to_table([row])  # fits PAIR_SCHEMA


def test_majority_and_tie():
    assert majority_verdict(["chosen", "flipped", "chosen"]) == "chosen"
    assert majority_verdict(["chosen", "undecidable"]) == "undecidable"
    assert majority_verdict(["flipped", "flipped", "chosen", "chosen"]) == "undecidable"
    assert majority_verdict(["flipped"]) == "flipped"


def test_cohen_kappa_and_agreement_on_a_known_example():
    # x: C C F U, y: C F F U. p_o = 3/4; marginals x (1/2, 1/4, 1/4), y (1/4, 1/2, 1/4):
    # p_e = 1/2*1/4 + 1/4*1/2 + 1/4*1/4 = 5/16; kappa = (3/4 - 5/16) / (1 - 5/16) = (7/16) / (11/16) = 7/11
    rows = [pair(i) for i in range(5)]
    x = ["chosen", "chosen", "flipped", "undecidable"]
    y = ["chosen", "flipped", "flipped", "undecidable"]
    assert cohen_kappa(x, y) == pytest.approx(7 / 11)
    verdicts = [verdict(r, v, "x") for r, v in zip(rows, x)] + [verdict(r, v, "y") for r, v in zip(rows, y)]
    verdicts.append(verdict(rows[4], "chosen", "z"))  # one annotator only: not in the agreement figures
    agreement = merge_verdicts(rows, verdicts)[2]["agreement"]
    assert agreement["pairs_with_2plus_annotators"] == 4 and agreement["pairwise_agreement"] == pytest.approx(0.75)
    assert agreement["kappa_top_two"] == {"annotators": ["x", "y"], "shared_pairs": 4,
                                          "cohen_kappa": pytest.approx(7 / 11), "percent_agreement": 0.75}
    assert cohen_kappa(["chosen"] * 3, ["chosen"] * 3) is None  # chance agreement 1: undefined


def test_re_verification_replaces_the_existing_verdict():
    a, b, c = pair(1), pair(2), pair(3)
    old_gold, _, _ = merge_verdicts([a, b], [verdict(a, "chosen", "x"), verdict(b, "flipped", "x")])
    _, old_dropped, _ = merge_verdicts([c], [verdict(c, "undecidable", "x")])
    existing = old_gold + old_dropped
    d = pair(4)
    gold, dropped, _ = merge_verdicts([a, b, d], [verdict(a, "flipped", "y"), verdict(b, "flipped", "y"),
                                                  verdict(d, "undecidable", "y")])
    union_gold, union_dropped, counts = merge_into_existing(existing, gold, dropped)
    assert sorted(r["pair_id"] for r in union_gold) == sorted(pair_id(r["conversation"], r["rejected"], r["chosen"])
                                                              for r in (a, b))
    assert [r["pair_id"] for r in union_dropped] == [c["pair_id"], d["pair_id"]]
    assert counts == {"existing_rows": 3, "existing_gold_carried": 0, "existing_dropped_carried": 1, "re_verified": 2,
                      "re_verified_changed": 1, "re_verified_gold": 2, "re_verified_undecidable": 0,
                      "gold_added": 0, "undecidable_added": 1}


# ---------------------------------------------------------------- the job


def test_job_exports_then_imports_into_gold_that_fits_the_schema(tmp_path):
    rows = [pair(i, "objective" if i % 2 else "subjective", ["low", "high", "medium"][i % 3],
                 judge_label="chosen") for i in range(6)]
    rows.append(pair(10, is_gold=True))
    rows.append(pair(11, status="dropped", reason="exact_duplicate", stage="dedup"))
    pq.write_table(to_table(rows), tmp_path / "pairs.parquet")
    exported, gold = tmp_path / "export", tmp_path / "gold"

    proc = run_job("verify.py", "action=export", f"data.input={tmp_path / 'pairs.parquet'}", f"data.output={exported}",
                   "export.n=4", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("worksheet.jsonl", "worksheet.md", "label_studio_tasks.json", "label_studio_config.xml",
                 "argilla_records.json", "argilla_settings.json", "protocol.md", "selected.parquet", "_SUCCESS"):
        assert (exported / name).exists(), name
    selected = pq.read_table(exported / "selected.parquet").to_pylist()
    assert [(r["objectivity"], r["controversiality"]) for r in selected] == [
        ("objective", "low"), ("objective", "medium"), ("objective", "high"), ("subjective", "low")]
    stats = json.loads((exported / "stats.json").read_text())
    assert (stats["exported"], stats["gold"], stats["not_kept"], stats["candidates"]) == (4, 1, 1, 6)

    args = ("action=import", f"data.exported={exported}", f"data.output={gold}")
    proc = run_job("verify.py", *args, timeout=120)
    assert proc.returncode != 0 and "verdicts" in proc.stderr and "action=import" in proc.stderr  # none yet

    ids = [r["pair_id"] for r in selected]
    write_jsonl(exported / "verdicts" / "alice.jsonl",
                fill(exported / "worksheet.jsonl", {ids[0]: "chosen", ids[1]: "flipped", ids[2]: "undecidable"}))
    write_jsonl(exported / "verdicts" / "bob.jsonl", fill(exported / "worksheet.jsonl", {ids[1]: "flipped"}))
    proc = run_job("verify.py", *args, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "counts reconcile" in proc.stdout and "Cohen kappa" in proc.stdout
    table = pads.dataset(gold / "pairs", format="parquet", partitioning="hive").to_table()
    out = table.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA).to_pylist()  # fits the schema
    kept = {r["pair_id"]: r for r in out if r["status"] == "kept"}
    flipped_id = pair_id(selected[1]["conversation"], selected[1]["rejected"], selected[1]["chosen"])
    assert set(kept) == {ids[0], flipped_id} and kept[flipped_id]["human_label"] == "flipped"
    assert all(r["is_gold"] for r in kept.values())
    assert [(r["pair_id"], r["reason"]) for r in out if r["status"] == "dropped"] == [(ids[2], "undecidable")]
    stats = json.loads((gold / "stats.json").read_text())
    assert (stats["pairs_verified"], stats["not_yet_verified"], stats["union"]["gold_added"]) == (3, 1, 2)
    assert stats["reconcile"]["ok"] and stats["annotators"]["bob"]["flipped"] == 1

    # a second round merges into the first D_gold: a new verdict on a gold pair replaces it
    write_jsonl(exported / "verdicts2" / "carol.jsonl",
                fill(exported / "worksheet.jsonl", {ids[0]: "flipped", ids[3]: "chosen"}))
    proc = run_job("verify.py", "action=import", f"data.exported={exported}", f"verdicts={exported / 'verdicts2'}",
                   f"gold.existing={gold / 'pairs'}", f"data.output={tmp_path / 'gold2'}", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "gold2" / "stats.json").read_text())
    assert stats["union"]["re_verified"] == 1 and stats["union"]["gold_added"] == 1
    assert stats["union"]["existing_gold_carried"] == 1 and stats["gold_rows"] == 3 and stats["reconcile"]["ok"]


def test_missing_verdicts_raise_the_typed_waiting_error_and_the_job_exits_3(tmp_path, capsys):
    with pytest.raises(WaitingForHumans) as waiting:
        ensure_verdicts(str(tmp_path / "export"), str(tmp_path / "verdicts"), waiting="Stage 1 iteration 2")
    assert str(waiting.value).startswith("Stage 1 iteration 2 waits for human verdicts")
    assert str(tmp_path / "export") in str(waiting.value) and waiting.value.verdicts == str(tmp_path / "verdicts")
    assert not (tmp_path / "verdicts").exists()  # nothing invented in their place

    @exits_with_status
    def job(cfg):
        ensure_verdicts(str(tmp_path / "export"), str(tmp_path / "verdicts"), waiting="The seed of D_gold")

    with pytest.raises(SystemExit) as stop:
        job(None)
    assert stop.value.code == WAITING_FOR_HUMANS == 3
    assert capsys.readouterr().err.startswith("The seed of D_gold waits for human verdicts")
