"""Human verification for Stage 1's gold set D_gold (DESIGN.md section 2).

Annotators verify pairs with their generated attributes and the written protocol (conf/protocol.md,
"human annotators only" sections included), objective low-controversiality pairs first. Each verdict
is one of:
  chosen       the data's chosen response (shown as Response A) really is better
  flipped      the data's rejected response (Response B) is better: the pair is swapped
  undecidable  the annotator cannot decide: the pair is discarded

The parts, in the order the job uses them:
  verification_order / human_protocol     which pairs go first, and the protocol text people read
  write_worksheet / write_label_studio / write_argilla   the export, one per tool
  read_verdicts                           our JSONL, a Label Studio JSON export or an Argilla export,
                                          normalised to {"pair_id", "verdict", "annotator", "notes"}
  merge_verdicts / merge_into_existing    majority per pair -> gold rows (PAIR_SCHEMA) + dropped rows,
                                          and the union with an earlier D_gold
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from itertools import combinations
from xml.sax.saxutils import quoteattr

from synpref.record import storage
from synpref.annotation.protocol import CORE, HUMAN_ONLY
from synpref.record.schema import DROPPED, KEPT, pair_id, unordered_key

STAGE = "verify"
WAITING_FOR_HUMANS = 3  # exit status of a job whose human verdicts are missing; re-run it when they are in place
CHOSEN, FLIPPED, UNDECIDABLE = "chosen", "flipped", "undecidable"
VERDICTS = (CHOSEN, FLIPPED, UNDECIDABLE)
VERDICT_HELP = {CHOSEN: "Response A is better", FLIPPED: "Response B is better",
                UNDECIDABLE: "cannot be decided: the pair is discarded"}
ATTRIBUTES = ("task_category", "objectivity", "controversiality", "desired_attributes", "guideline")
OBJECTIVITY_RANK = {"objective": 0, "subjective": 1}
CONTROVERSIALITY_RANK = {"low": 0, "medium": 1, "high": 2}

WORKSHEET_JSONL, WORKSHEET_MD = "worksheet.jsonl", "worksheet.md"
LS_TASKS, LS_CONFIG = "label_studio_tasks.json", "label_studio_config.xml"
ARGILLA_RECORDS, ARGILLA_SETTINGS = "argilla_records.json", "argilla_settings.json"


# ---------------------------------------------------------------- order and protocol


def order_key(row: dict, seed: int = 0) -> tuple:
    """Objective before subjective, then low < medium < high controversiality (unknown values last),
    ties broken by a seeded hash of pair_id."""
    tie = int.from_bytes(hashlib.blake2b(f"{seed}:{row['pair_id']}".encode(), digest_size=8).digest(), "big")
    return (OBJECTIVITY_RANK.get(row.get("objectivity"), len(OBJECTIVITY_RANK)),
            CONTROVERSIALITY_RANK.get(row.get("controversiality"), len(CONTROVERSIALITY_RANK)), tie)


def verification_order(rows: list[dict], seed: int = 0) -> list[dict]:
    return sorted(rows, key=lambda row: order_key(row, seed))


def human_protocol(sections: dict[str, str], rows: list[dict]) -> str:
    """The protocol as a person reads it for these pairs (Markdown): the core principles, every
    "(human annotators only)" section, and the guideline sections of the attribute values present."""
    wanted = {CORE}
    for row in rows:
        wanted |= {f"Task category: {row.get('task_category')}", f"Objectivity: {row.get('objectivity')}",
                   f"Controversiality: {row.get('controversiality')}"}
    return "\n\n".join(f"### {title}\n{body}" for title, body in sections.items()
                       if title in wanted or HUMAN_ONLY in title)


# ---------------------------------------------------------------- export


def conversation_plain(conversation) -> str:
    """The prompt as text: a single user turn as is, otherwise one "ROLE: content" block per turn."""
    turns = list(conversation or [])
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in turns)


def attributes_line(row: dict) -> str:
    desired = ", ".join(row.get("desired_attributes") or []) or "-"
    return (f"task category: {row.get('task_category')}; objectivity: {row.get('objectivity')}; "
            f"controversiality: {row.get('controversiality')}\ndesired attributes: {desired}\n"
            f"guideline: {row.get('guideline') or '-'}")


def worksheet_line(row: dict) -> dict:
    """One pair as a person fills it in: A = the data's chosen, B = the data's rejected."""
    line = {"pair_id": row["pair_id"], "conversation": row["conversation"], "response_a": row["chosen"],
            "response_b": row["rejected"]}
    line.update({name: row.get(name) for name in ATTRIBUTES})
    line.update(verdict="", annotator="", notes="")
    return line


def fenced(text: str | None) -> str:
    """A code block that the text itself cannot close (its fence is longer than any backtick run in it)."""
    text = text or ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def worksheet_instructions(n: int) -> str:
    choices = "\n".join(f'  - `"{v}"`: {VERDICT_HELP[v]}' for v in VERDICTS)
    return (
        f"## How to record your verdicts\n"
        f"Open `{WORKSHEET_JSONL}` (one line per pair, in the order below), copy it to "
        f"`verdicts/<your-name>.jsonl`, and for each pair you verify set:\n"
        f"- `verdict` to one of:\n{choices}\n"
        f"- `annotator` to your name (left empty, the file name is used);\n"
        f"- `notes` to one sentence saying why (the protocol asks for it; say why when undecidable).\n\n"
        f"Lines left with an empty verdict count as not yet verified, so you can stop and continue later. "
        f"Work from the top: the {n} pairs are ordered objective before subjective, low before high "
        f"controversiality. Then import the verdicts into D_gold:\n\n"
        f"    python jobs/verify.py action=import data.exported=<this folder> "
        f"verdicts=<this folder>/verdicts data.output=<gold folder>\n")


def write_worksheet(rows: list[dict], folder: str, protocol_text: str) -> list[str]:
    """worksheet.jsonl (also the verdict file format) and worksheet.md (the same pairs, readable)."""
    lines = [json.dumps(worksheet_line(row), ensure_ascii=False) for row in rows]
    parts = [f"# Verification worksheet: {len(rows)} pairs", worksheet_instructions(len(rows)),
             f"## Protocol\n{protocol_text}"]
    for i, row in enumerate(rows, 1):
        turns = "\n\n".join(f"**{m['role'].upper()}:**\n\n{fenced(m['content'])}" for m in row["conversation"] or [])
        desired = ", ".join(row.get("desired_attributes") or []) or "-"
        parts.append(
            f"---\n\n## Pair {i} of {len(rows)}: `{row['pair_id']}`\n\n"
            f"- task category: {row.get('task_category')}\n- objectivity: {row.get('objectivity')}\n"
            f"- controversiality: {row.get('controversiality')}\n- desired attributes: {desired}\n"
            f"- guideline: {row.get('guideline') or '-'}\n\n"
            f"### Conversation\n\n{turns}\n\n### Response A\n\n{fenced(row['chosen'])}\n\n"
            f"### Response B\n\n{fenced(row['rejected'])}\n\n"
            f"Verdict (`{WORKSHEET_JSONL}` line {i}): chosen / flipped / undecidable")
    paths = [storage.join(folder, WORKSHEET_JSONL), storage.join(folder, WORKSHEET_MD)]
    storage.write_text(paths[0], "".join(line + "\n" for line in lines))
    storage.write_text(paths[1], "\n\n".join(parts) + "\n")
    return paths


# Label Studio: the import is a JSON list of tasks {"data": {...}}, each data key referenced by a
# `$key` in the labeling config; the JSON export gives each task its `annotations`, each with
# `result` items {"from_name", "to_name", "type": "choices"|"textarea", "value": {"choices": [..]} |
# {"text": [..]}}, `was_cancelled` and `completed_by` (the user id). Sources: labelstud.io/guide/tasks
# ("Basic Label Studio JSON format"), labelstud.io/guide/task_format ("Label Studio JSON format of
# annotated tasks"), api.labelstud.io/tutorials/tutorials/import-tasks (<Choices>/<Choice> config).
LS_LABEL_CONFIG = """<View>
  <Header value="Conversation"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Attributes (task category, objectivity, controversiality, desired attributes, guideline)"/>
  <Text name="attributes" value="$attributes"/>
  <Header value="Response A"/>
  <Text name="response_a" value="$response_a"/>
  <Header value="Response B"/>
  <Text name="response_b" value="$response_b"/>
  <Header value="Verdict"/>
  <Choices name="verdict" toName="prompt" choice="single" required="true" showInline="true">
{choices}
  </Choices>
  <TextArea name="notes" toName="prompt" rows="2" editable="true" maxSubmissions="1"
            placeholder="One sentence: why (also when undecidable)"/>
</View>
"""


def write_label_studio(rows: list[dict], folder: str) -> list[str]:
    tasks = []
    for row in rows:
        data = {"pair_id": row["pair_id"], "prompt": conversation_plain(row["conversation"]),
                "response_a": row["chosen"], "response_b": row["rejected"], "attributes": attributes_line(row)}
        data.update({name: row.get(name) for name in ATTRIBUTES})
        data["desired_attributes"] = ", ".join(row.get("desired_attributes") or [])
        tasks.append({"data": data})
    choices = "\n".join(f"    <Choice value={quoteattr(v)} hint={quoteattr(VERDICT_HELP[v])}/>" for v in VERDICTS)
    paths = [storage.join(folder, LS_TASKS), storage.join(folder, LS_CONFIG)]
    storage.write_text(paths[0], json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    storage.write_text(paths[1], LS_LABEL_CONFIG.format(choices=choices))
    return paths


# Argilla 2.x: records as `Dataset.records.to_json` writes them (Record.to_dict: "id", "fields",
# "metadata", "suggestions", "responses" {question: [{"value", "user_id", "status"}]}, "vectors"), and
# settings as `Settings.to_json` writes them (Settings.serialize: "guidelines", "fields" with
# settings.type "text", "questions" with settings.type "label_selection" {options: [{value, text}]} or
# "text", "metadata" with settings.type "terms", "distribution" {strategy: overlap, min_submitted}).
# Sources: argilla-io/argilla argilla/src/argilla/records/_resource.py, records/_io/_json.py,
# records/_io/_generic.py (the flattened "<question>.responses[.users|.status]" export),
# settings/_resource.py, settings/_question.py, _models/_settings/*; docs.argilla.io how_to_guides/record.
# Load: settings = rg.Settings.from_json("argilla_settings.json"); dataset = rg.Dataset(name=..., settings=settings)
#       dataset.create(); dataset.records.log([rg.Record.from_dict(d) for d in json.load(open("argilla_records.json"))])
def argilla_settings(guidelines: str | None = None, min_submitted: int = 1) -> dict:
    def text_field(name, title):
        return {"name": name, "title": title, "required": True, "description": None,
                "settings": {"type": "text", "use_markdown": True}}

    def terms(name, title):
        return {"name": name, "title": title, "type": "terms", "visible_for_annotators": True,
                "settings": {"type": "terms", "values": None, "visible_for_annotators": True}}

    return {
        "guidelines": guidelines,
        "fields": [text_field("prompt", "Conversation"), text_field("response_a", "Response A"),
                   text_field("response_b", "Response B")],
        "questions": [
            {"name": "verdict", "title": "Which response is better?", "required": True,
             "description": "; ".join(f"{v}: {VERDICT_HELP[v]}" for v in VERDICTS),
             "settings": {"type": "label_selection", "visible_options": len(VERDICTS),
                          "options": [{"value": v, "text": v, "description": VERDICT_HELP[v]} for v in VERDICTS]}},
            {"name": "notes", "title": "Notes", "required": False,
             "description": "One sentence: why (also when undecidable)",
             "settings": {"type": "text", "use_markdown": False}},
        ],
        "metadata": [terms(name, name.replace("_", " ")) for name in ATTRIBUTES],
        "vectors": [],
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": int(min_submitted)},
        "mapping": None,
    }


def write_argilla(rows: list[dict], folder: str, *, guidelines: str | None = None, min_submitted: int = 1) -> list[str]:
    records = []
    for row in rows:
        metadata = {name: row.get(name) for name in ATTRIBUTES}
        metadata["desired_attributes"] = ", ".join(row.get("desired_attributes") or [])
        records.append({"id": row["pair_id"],
                        "fields": {"prompt": conversation_plain(row["conversation"]), "response_a": row["chosen"],
                                   "response_b": row["rejected"]},
                        "metadata": metadata, "suggestions": {}, "responses": {}, "vectors": {}})
    paths = [storage.join(folder, ARGILLA_RECORDS), storage.join(folder, ARGILLA_SETTINGS)]
    storage.write_text(paths[0], json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    storage.write_json(paths[1], argilla_settings(guidelines, min_submitted))
    return paths


# ---------------------------------------------------------------- verdicts in


def verdict_value(value, where: str) -> str | None:
    """chosen / flipped / undecidable (case and spaces ignored); None when empty; ValueError otherwise."""
    if isinstance(value, list):
        if len(value) > 1:
            raise ValueError(f"{where}: several verdicts {value!r}; give one of {', '.join(VERDICTS)}")
        value = value[0] if value else None
    if value is None or not str(value).strip():
        return None
    verdict = str(value).strip().lower()
    if verdict not in VERDICTS:
        raise ValueError(f"{where}: verdict {value!r} is not one of {', '.join(VERDICTS)}")
    return verdict


def _annotator(value, default: str) -> str:
    if isinstance(value, dict):  # some Label Studio versions export the user as an object
        value = value.get("email") or value.get("id")
    return str(value).strip() if value is not None and str(value).strip() else default


def _notes(value) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value if v is not None)
    return "" if value is None else str(value)


def _from_label_studio(task: dict, where: str, default: str) -> list[dict | None]:
    pid = (task.get("data") or {}).get("pair_id")
    if not pid:
        raise ValueError(f"{where}: a Label Studio task without data.pair_id")
    found = []
    for i, annotation in enumerate(task.get("annotations") or []):
        if annotation.get("was_cancelled"):  # skipped in the UI: not a verdict
            found.append(None)
            continue
        verdict, notes = None, ""
        for item in annotation.get("result") or []:
            value = item.get("value") or {}
            if item.get("type") == "choices" and item.get("from_name", "verdict") == "verdict":
                verdict = verdict_value(value.get("choices"), f"{where} (pair {pid}, annotation {i})")
            elif item.get("type") == "textarea" and item.get("from_name", "notes") == "notes":
                notes = _notes(value.get("text"))
        annotator = _annotator(annotation.get("completed_by"), default)
        found.append({"pair_id": pid, "verdict": verdict, "annotator": annotator, "notes": notes} if verdict else None)
    return found or [None]  # a task nobody annotated yet


def _from_argilla(record: dict, where: str, default: str) -> list[dict | None]:
    pid = record.get("id") or (record.get("metadata") or {}).get("pair_id")
    if not pid:
        raise ValueError(f"{where}: an Argilla record without id")
    answers: dict = defaultdict(dict)  # user id -> question -> (value, status)
    if isinstance(record.get("responses"), dict):  # nested: records.to_json / Record.to_dict
        for question, responses in record["responses"].items():
            for r in responses or []:
                answers[r.get("user_id")][question] = (r.get("value"), r.get("status"))
    else:  # flattened: to_list(flatten=True) / to_datasets, "<question>.responses[.users|.status]"
        for question in ("verdict", "notes"):
            values = record.get(f"{question}.responses") or []
            users = record.get(f"{question}.responses.users") or [None] * len(values)
            statuses = record.get(f"{question}.responses.status") or [None] * len(values)
            for value, user, status in zip(values, users, statuses):
                answers[user][question] = (value, status)
    found = []
    for user, by_question in answers.items():
        value, status = by_question.get("verdict", (None, None))
        if status not in (None, "submitted"):  # draft or discarded: not a verdict
            found.append(None)
            continue
        verdict = verdict_value(value, f"{where} (record {pid}, user {user})")
        notes = _notes(by_question.get("notes", ("", None))[0])
        found.append({"pair_id": pid, "verdict": verdict, "annotator": _annotator(user, default), "notes": notes}
                     if verdict else None)
    return found or [None]


def is_record(obj: dict) -> bool:
    """A verdict line, Label Studio task or Argilla record (not stats.json or argilla_settings.json)."""
    return ("pair_id" in obj or "annotations" in obj or isinstance(obj.get("data"), dict)
            or ("id" in obj and ("fields" in obj or "responses" in obj or "response_a" in obj)))


def _from_object(obj, where: str, default: str) -> list[dict | None]:
    """Verdicts of one JSON object: ours / Label Studio JSON-MIN, a Label Studio task, an Argilla record."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "annotations" in obj or isinstance(obj.get("data"), dict):
        return _from_label_studio(obj, where, default)
    if ("fields" in obj or isinstance(obj.get("responses"), dict) or any(k.endswith(".responses") for k in obj)
            or ("id" in obj and "response_a" in obj and "pair_id" not in obj)):  # flattened, nobody answered yet
        return _from_argilla(obj, where, default)
    if "pair_id" in obj:
        verdict = verdict_value(obj.get("verdict"), f"{where} (pair {obj['pair_id']})")
        if verdict is None:
            return [None]
        return [{"pair_id": obj["pair_id"], "verdict": verdict, "annotator": _annotator(obj.get("annotator"), default),
                 "notes": _notes(obj.get("notes"))}]
    raise ValueError(f"{where}: not a verdict line, Label Studio task or Argilla record (keys {sorted(obj)[:8]})")


def verdict_files(path: str) -> list[str]:
    """A file as given, or every *.jsonl / *.json under a folder; [] when the path does not exist."""
    if not storage.exists(path):
        return []
    return [f for f in storage.expand_files(path) if f.endswith((".jsonl", ".json"))]


def read_verdicts(path: str, counts: dict | None = None) -> list[dict]:
    """Normalised verdicts {"pair_id", "verdict", "annotator", "notes"} from a file or a folder of them.

    Accepts our worksheet / verdict JSONL (also Label Studio's JSON-MIN export, which has the same flat
    keys), Label Studio's JSON export and Argilla's records export (nested or flattened). Entries with
    no verdict yet (empty field, unannotated task, cancelled annotation, draft or discarded response)
    are skipped and counted in counts["empty"]. An annotator missing from our JSONL is the file's stem.
    A second verdict of the same annotator on the same pair replaces the first (counts["replaced"]).
    A file that is one JSON object but no record (stats.json, argilla_settings.json) is skipped and
    listed in counts["files_skipped"]; an invalid verdict value raises ValueError naming where it is."""
    counts = counts if counts is not None else {}
    counts.update(files=0, records=0, empty=0, replaced=0, files_skipped=[])
    verdicts: dict[tuple, dict] = {}
    for file in verdict_files(path):
        text = storage.read_text(file)
        default = file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if file.endswith(".jsonl"):
            objects = [(f"{file}:{n}", json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        else:
            data = json.loads(text) if text.strip() else []
            if isinstance(data, dict) and not is_record(data):
                counts["files_skipped"].append(file)
                continue
            objects = [(f"{file}#{n}", obj) for n, obj in enumerate(data if isinstance(data, list) else [data])]
        counts["files"] += 1
        for where, obj in objects:
            counts["records"] += 1
            for verdict in _from_object(obj, where, default):
                if verdict is None:
                    counts["empty"] += 1
                    continue
                key = (verdict["pair_id"], verdict["annotator"])
                counts["replaced"] += key in verdicts
                verdicts.pop(key, None)
                verdicts[key] = verdict
    return list(verdicts.values())


# ---------------------------------------------------------------- merge


def is_tie(verdicts: list[str]) -> bool:
    ranked = Counter(verdicts).most_common(2)
    return len(ranked) == 2 and ranked[0][1] == ranked[1][1]


def majority_verdict(verdicts: list[str]) -> str:
    """The most frequent verdict; a tie for first place is undecidable."""
    return UNDECIDABLE if not verdicts or is_tie(verdicts) else Counter(verdicts).most_common(1)[0][0]


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two annotators' verdicts on the same pairs; None when chance agreement is 1."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def agreement_stats(votes: dict[str, dict[str, str]]) -> dict:
    """votes: pair_id -> annotator -> verdict. Pairwise percent agreement over pairs with >= 2
    annotators, and Cohen's kappa of the two most frequent annotators on the pairs they share."""
    multi = {pid: v for pid, v in votes.items() if len(v) >= 2}
    compared = agreeing = 0
    for by_annotator in multi.values():
        for x, y in combinations(by_annotator.values(), 2):
            compared += 1
            agreeing += x == y
    frequency = Counter(a for by_annotator in votes.values() for a in by_annotator)
    top = sorted(frequency, key=lambda a: (-frequency[a], a))[:2]
    kappa = None
    if len(top) == 2:
        shared = [pid for pid, v in votes.items() if top[0] in v and top[1] in v]
        a, b = [votes[p][top[0]] for p in shared], [votes[p][top[1]] for p in shared]
        kappa = {"annotators": top, "shared_pairs": len(shared), "cohen_kappa": cohen_kappa(a, b),
                 "percent_agreement": (sum(x == y for x, y in zip(a, b)) / len(shared)) if shared else None}
    return {"pairs_with_2plus_annotators": len(multi), "annotator_pairs_compared": compared,
            "pairwise_agreement": agreeing / compared if compared else None, "kappa_top_two": kappa}


def flip(row: dict) -> dict:
    """The pair the other way round: chosen <-> rejected, a new pair_id, and every label that names a
    side turned with it (judge votes and label, rm_scores); margin (the data's score gap) no longer applies."""
    new = dict(row)
    new.update(chosen=row["rejected"], rejected=row["chosen"], margin=None,
               pair_id=pair_id(row["conversation"], row["rejected"], row["chosen"]))
    other = {"chosen": "rejected", "rejected": "chosen", "original": "swapped", "swapped": "original"}
    new["judge_label"] = other.get(row.get("judge_label"), row.get("judge_label"))
    new["judge_votes"] = [{**v, "verdict": other.get(v.get("verdict"), v.get("verdict")),
                           "order": other.get(v.get("order"), v.get("order"))} for v in row.get("judge_votes") or []] \
        if row.get("judge_votes") is not None else None
    new["rm_scores"] = [{**s, "r_chosen": s.get("r_rejected"), "r_rejected": s.get("r_chosen"),
                         "p": None if s.get("p") is None else 1.0 - s["p"]} for s in row.get("rm_scores") or []] \
        if row.get("rm_scores") is not None else None
    return new


def _earlier_history(row: dict) -> list[dict]:
    """The row's history with its current decision (an earlier job's, when stage is set) appended."""
    history = [dict(h) for h in row.get("history") or []]
    if row.get("stage") is not None:
        history.append({"stage": row["stage"], "status": row.get("status") or KEPT, "reason": row.get("reason")})
    return history


def decided_row(row: dict, verdict: str) -> dict:
    """The PAIR_SCHEMA row for a majority verdict: a gold row (chosen / flipped) or a dropped one."""
    history = _earlier_history(row)
    if verdict == UNDECIDABLE:
        return {**row, "human_label": UNDECIDABLE, "is_gold": False, "status": DROPPED, "stage": STAGE,
                "reason": UNDECIDABLE, "history": history}
    new = flip(row) if verdict == FLIPPED else dict(row)
    reason = f"flipped from {row['pair_id']}" if verdict == FLIPPED else "human verdict: chosen"
    history.append({"stage": STAGE, "status": KEPT, "reason": reason})
    new.update(human_label=verdict, is_gold=True, status=KEPT, stage=STAGE, reason=None, history=history)
    return new


def merge_verdicts(rows: list[dict], verdicts: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """Exported rows + verdicts -> (gold rows, dropped undecidable rows, stats). Rows with no verdict
    are in neither list (counted as not yet verified); verdicts for pairs not among `rows` are counted."""
    known = {row["pair_id"] for row in rows}
    votes: dict[str, dict[str, str]] = defaultdict(dict)
    unknown = Counter()
    per_annotator: dict[str, Counter] = defaultdict(Counter)
    for v in verdicts:
        if v["pair_id"] not in known:
            unknown[v["pair_id"]] += 1
            continue
        votes[v["pair_id"]][v["annotator"]] = v["verdict"]
    for by_annotator in votes.values():
        for annotator, verdict in by_annotator.items():
            per_annotator[annotator][verdict] += 1
    gold, dropped, outcome = [], [], Counter()
    ties = 0
    judge = Counter()
    for row in rows:
        by_annotator = votes.get(row["pair_id"])
        if not by_annotator:
            outcome["not_yet_verified"] += 1
            continue
        verdict = majority_verdict(list(by_annotator.values()))
        ties += is_tie(list(by_annotator.values()))
        outcome[verdict] += 1
        (dropped if verdict == UNDECIDABLE else gold).append(decided_row(row, verdict))
        label = row.get("judge_label")
        if verdict != UNDECIDABLE:
            if label in ("chosen", "rejected"):
                judge["compared"] += 1
                judge["agree"] += (label == "chosen") == (verdict == CHOSEN)
            else:
                judge["tie" if label == "tie" else "no_judge_label"] += 1
    decided = outcome[CHOSEN] + outcome[FLIPPED]
    stats = {
        "pairs_exported": len(rows), "verdicts_read": len(verdicts),
        "pairs_verified": outcome[CHOSEN] + outcome[FLIPPED] + outcome[UNDECIDABLE],
        CHOSEN: outcome[CHOSEN], FLIPPED: outcome[FLIPPED], UNDECIDABLE: outcome[UNDECIDABLE],
        "not_yet_verified": outcome["not_yet_verified"], "majority_ties_undecidable": ties,
        "verdicts_for_unknown_pairs": sum(unknown.values()), "unknown_pair_ids": sorted(unknown)[:5],
        "annotators": {a: {**{v: c[v] for v in VERDICTS}, "total": sum(c.values())}
                       for a, c in sorted(per_annotator.items())},
        "agreement": agreement_stats(votes),
        "original_label_correct": outcome[CHOSEN] / decided if decided else None,  # human vs data
        "human_vs_judge_agreement": judge["agree"] / judge["compared"] if judge["compared"] else None,
        "human_vs_judge": {"compared": judge["compared"], "agree": judge["agree"],
                           "agreement": judge["agree"] / judge["compared"] if judge["compared"] else None,
                           "judge_tie": judge["tie"], "no_judge_label": judge["no_judge_label"]},
    }
    return gold, dropped, stats


def row_key(row: dict) -> str:
    return unordered_key(row["conversation"], row["chosen"], row["rejected"])


def merge_into_existing(existing: list[dict], gold: list[dict],
                        dropped: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """The union of an earlier D_gold (its gold rows and dropped undecidables) with new outcomes. A pair
    already there (matched regardless of order) keeps its earlier outcome unless it has a new one,
    which replaces it (re-verified)."""
    new = {row_key(r): r for r in gold + dropped}
    carried_gold, carried_dropped, replaced = [], [], {}
    for row in existing:
        key = row_key(row)
        if key in new:
            replaced[key] = row
        elif (row.get("status") or KEPT) == KEPT:
            carried_gold.append(row)
        else:
            carried_dropped.append(row)
    changed = sum(1 for key, old in replaced.items()
                  if (old.get("status") or KEPT, old["pair_id"]) != (new[key]["status"], new[key]["pair_id"]))
    counts = {
        "existing_rows": len(existing), "existing_gold_carried": len(carried_gold),
        "existing_dropped_carried": len(carried_dropped), "re_verified": len(replaced),
        "re_verified_changed": changed,
        "re_verified_gold": sum(1 for k in replaced if new[k]["status"] == KEPT),
        "re_verified_undecidable": sum(1 for k in replaced if new[k]["status"] != KEPT),
        "gold_added": sum(1 for r in gold if row_key(r) not in replaced),
        "undecidable_added": sum(1 for r in dropped if row_key(r) not in replaced),
    }
    return carried_gold + gold, carried_dropped + dropped, counts


def verdicts_or_exit(export: str, verdicts: str, *, waiting: str, simulate_truth: str | None = None,
                     error_rate: float = 0.0, undecidable_rate: float = 0.0, seed: int = 0) -> None:
    """Make sure `verdicts` holds verdicts on the pairs exported to `export`: a simulated annotator's when
    `simulate_truth` names a demo world (its known truth), otherwise a person's. With none there yet, say
    where the pairs are and exit with WAITING_FOR_HUMANS; `waiting` names what waits ("Stage 1 iteration 2")."""
    import sys

    if simulate_truth and not storage.exists(storage.join(verdicts, "simulated.jsonl")):
        from synpref.demo.world import load_truth, simulate_annotator
        from synpref.record.pairs_io import read_kept

        rows = read_kept(storage.join(export, "selected.parquet"))
        lines = simulate_annotator(rows, load_truth(simulate_truth), annotator="simulated-1", error_rate=error_rate,
                                   undecidable_rate=undecidable_rate, seed=seed)
        storage.write_text(storage.join(verdicts, "simulated.jsonl"), "".join(json.dumps(v) + "\n" for v in lines))
    if not storage.exists(verdicts):
        print(f"{waiting} waits for human verdicts: the pairs to verify are in {export} (worksheet.md / "
              f"worksheet.jsonl, Label Studio and Argilla imports). Put the filled worksheet or the tool's export in "
              f"{verdicts}/ and run the same command again.", flush=True)
        sys.exit(WAITING_FOR_HUMANS)
