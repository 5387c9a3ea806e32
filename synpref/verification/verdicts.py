"""The verdicts people give, and reading them back from the tools they used.

Each verdict is one of:
  chosen       the data's chosen response (shown as Response A) really is better
  flipped      the data's rejected response (Response B) is better: the pair is swapped
  undecidable  the annotator cannot decide: the pair is discarded

`read_verdicts` reads our worksheet JSONL, a Label Studio JSON export or an Argilla export (a file or
a folder of them) and normalises every entry to {"pair_id", "verdict", "annotator", "notes"}.
"""

from __future__ import annotations

import json
from collections import defaultdict

from synpref.record import storage

CHOSEN, FLIPPED, UNDECIDABLE = "chosen", "flipped", "undecidable"


VERDICTS = (CHOSEN, FLIPPED, UNDECIDABLE)


VERDICT_HELP = {CHOSEN: "Response A is better", FLIPPED: "Response B is better",
                UNDECIDABLE: "cannot be decided: the pair is discarded"}


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
