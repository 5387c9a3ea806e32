"""The five preference attributes (DESIGN.md section 1): the annotator's prompt, its JSON schema, and
the check of its answer.

The taxonomy (task categories, objectivity values, controversiality levels) lives in
conf/annotate.yaml; the JSON schema is built from it and passed to vLLM as structured output, so a
well-formed answer always parses. The answer is still checked: structured output can be switched off,
a model can stop at max_tokens inside the JSON, or a broken engine can return nothing.
"""

from __future__ import annotations

import json

ATTRIBUTE_COLUMNS = ("task_category", "objectivity", "controversiality", "desired_attributes", "guideline")


def attribute_schema(taxonomy, *, max_desired: int = 5, max_chars: int = 300) -> dict:
    return {
        "type": "object",
        "properties": {
            "task_category": {"type": "string", "enum": list(taxonomy["task_categories"])},
            "objectivity": {"type": "string", "enum": list(taxonomy["objectivity"])},
            "controversiality": {"type": "string", "enum": list(taxonomy["controversiality"])},
            "desired_attributes": {"type": "array", "items": {"type": "string", "maxLength": 60},
                                   "minItems": 1, "maxItems": max_desired},
            "guideline": {"type": "string", "maxLength": max_chars},
        },
        "required": list(ATTRIBUTE_COLUMNS),
        "additionalProperties": False,
    }


def conversation_text(conversation, max_chars: int) -> str:
    lines = [f"{m['role'].upper()}: {m['content']}" for m in conversation]
    return clip("\n".join(lines), max_chars)


def clip(text: str, max_chars: int) -> str:
    """Keep the start and end of a long text (the question and the conclusion), marking the cut."""
    if text is None or len(text) <= max_chars:
        return text or ""
    head = max_chars * 2 // 3
    return text[:head] + " [...] " + text[-(max_chars - head):]


def attribute_messages(pair: dict, taxonomy, *, max_chars: int) -> list[dict]:
    """Chat messages asking for the five attributes of one pair, as JSON."""
    system = (
        "You annotate preference data. Read a conversation and two candidate responses and describe the "
        "request with five attributes, as JSON with exactly these keys:\n"
        f"- task_category: one of {', '.join(taxonomy['task_categories'])}\n"
        f"- objectivity: {' or '.join(taxonomy['objectivity'])} (objective = a checkable right answer exists)\n"
        f"- controversiality: one of {', '.join(taxonomy['controversiality'])} (how much careful people "
        "would disagree about which response is better)\n"
        "- desired_attributes: a list of the qualities a user wants in a good response to this request\n"
        "- guideline: one or two sentences saying how to decide which response is better for this request"
    )
    user = (
        f"Conversation:\n{conversation_text(pair['conversation'], max_chars)}\n\n"
        f"Response A:\n{clip(pair['chosen'], max_chars)}\n\nResponse B:\n{clip(pair['rejected'], max_chars)}\n\n"
        "Answer with the JSON object only."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def json_answer(text: str | None, n_tokens: int, max_tokens: int) -> tuple[object, str | None]:
    """(the parsed JSON, None), or (None, why): empty_answer, truncated (stopped at max_tokens), invalid_json."""
    if not text or not text.strip():
        return None, "empty_answer"
    try:
        return json.loads(text), None
    except json.JSONDecodeError:
        return None, "truncated" if n_tokens >= max_tokens else "invalid_json"


def check_answer(text: str | None, n_tokens: int, max_tokens: int, schema: dict) -> tuple[dict | None, str | None]:
    """(attributes, None) for an answer that fits the schema, else (None, why): empty_answer,
    truncated (stopped at max_tokens), invalid_json or schema_mismatch:<what>."""
    value, error = json_answer(text, n_tokens, max_tokens)
    if error:
        return None, error
    problem = schema_problem(value, schema)
    if problem:
        return None, f"schema_mismatch:{problem}"
    return {key: value[key] for key in schema["required"]}, None


def schema_problem(value, schema: dict) -> str | None:
    """The first way `value` breaks the (flat, object-of-enums-strings-and-lists) schema, or None."""
    if not isinstance(value, dict):
        return "not_an_object"
    for key in schema["required"]:
        if key not in value:
            return f"missing_{key}"
    for key, spec in schema["properties"].items():
        item = value[key]
        if spec["type"] == "string":
            if not isinstance(item, str) or not item.strip():
                return f"{key}_not_a_string"
            if "enum" in spec and item not in spec["enum"]:
                return f"{key}_not_allowed"
        elif spec["type"] == "array":
            if not isinstance(item, list) or not all(isinstance(x, str) and x.strip() for x in item):
                return f"{key}_not_a_list_of_strings"
            if len(item) < spec.get("minItems", 0):
                return f"{key}_too_short"
    return None
