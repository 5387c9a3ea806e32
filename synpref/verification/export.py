"""The pairs to verify, written for the tool people use: our worksheet (JSONL to fill in and a
readable Markdown), a Label Studio import, an Argilla 2 dataset. A = the data's chosen response,
B = the data's rejected one.
"""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import quoteattr

from synpref.record import storage
from synpref.verification.verdicts import VERDICT_HELP, VERDICTS

ATTRIBUTES = ("task_category", "objectivity", "controversiality", "desired_attributes", "guideline")


WORKSHEET_JSONL, WORKSHEET_MD = "worksheet.jsonl", "worksheet.md"


LS_TASKS, LS_CONFIG = "label_studio_tasks.json", "label_studio_config.xml"


ARGILLA_RECORDS, ARGILLA_SETTINGS = "argilla_records.json", "argilla_settings.json"
SELECTED = "selected.parquet"  # the exported pairs themselves (PAIR_SCHEMA), read back by the import


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
