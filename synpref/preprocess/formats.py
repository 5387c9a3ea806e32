"""Turn one input record, in any of the preference formats users have, into pair rows.

Formats, detected per record:
- TRL conversational: `chosen` / `rejected` are message lists, with an explicit `prompt` (string or
  messages) or an implicit one (the common prefix of the two lists).
- TRL standard / plain: `prompt`, `chosen`, `rejected` strings (`conversation` or `context` also name
  the prompt; synpref's own rows read back this way).
- Anthropic HH: `chosen` / `rejected` transcripts with "\\n\\nHuman:" / "\\n\\nAssistant:" turns.
- Rated completions (UltraFeedback): `prompt`/`instruction` and `completions: [{response, overall_score}]`,
  or `responses: [...]` with `scores: [...]`; binarized into pairs by score.
- HelpSteer3 preference: `context`, `response1`, `response2`, `overall_preference` in [-3, 3].

A record that cannot be read raises Malformed(reason): the caller quarantines it. A record whose
chosen or rejected response is absent still becomes a row (with the response null) so that the
`require_responses` step drops it with its reason, as the paper's pre-processing does.
"""

from __future__ import annotations

import itertools
import json

from synpref.record.ops import record_decision
from synpref.record.schema import DROPPED, ROLES, new_pair


class Malformed(ValueError):
    """A record that cannot become a pair; `reason` is a short snake_case tag."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


BINARIZE_STRATEGIES = ("best_vs_all", "best_vs_worst", "all_pairs")
TEXT_KEYS = ("response", "text", "output", "content", "completion")
SCORE_KEYS = ("overall_score", "score", "rating", "reward")


def check_text(value, what: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{what}_not_text", type(value).__name__)
    if "\x00" in value:
        raise Malformed("nul_character", what)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape in the JSON
        raise Malformed("invalid_unicode", what) from None
    if len(value) > max_chars:
        raise Malformed("too_long", f"{what} has {len(value)} chars > {max_chars}")
    return value


def message_text(content, max_chars: int) -> str:
    # OpenAI-style content parts: keep the text parts, refuse anything else.
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise Malformed("non_text_content")
            texts.append(check_text(part.get("text"), "content", max_chars))
        content = "".join(texts)
    return check_text(content, "content", max_chars)


def parse_messages(value, limits: dict) -> list[dict]:
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise Malformed("messages_not_a_list", type(value).__name__)
    if len(value) > limits["max_messages"]:
        raise Malformed("too_many_messages", f"{len(value)} > {limits['max_messages']}")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise Malformed("message_not_an_object", f"message {i}")
        role = message.get("role", message.get("from"))
        if role is None:
            raise Malformed("message_missing_role", f"message {i}")
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        if role not in ROLES:
            raise Malformed("unknown_role", repr(role)[:40])
        if role == "system" and i != 0:
            raise Malformed("system_not_first", f"message {i}")
        text = message_text(message.get("content", message.get("value")), limits["max_chars"])
        if not text.strip():
            raise Malformed("empty_message", f"message {i}")
        messages.append({"role": role, "content": text})
    return messages


def parse_prompt(value, limits: dict) -> list[dict]:
    if value is None:
        raise Malformed("missing_prompt")
    if isinstance(value, str) and not value.strip():
        raise Malformed("empty_prompt")
    conversation = parse_messages(value, limits)
    if not any(m["role"] == "user" for m in conversation):
        raise Malformed("no_user_turn")
    if conversation[-1]["role"] != "user":
        raise Malformed("prompt_not_ending_with_user")
    return conversation


def response_text(value, what: str, limits: dict) -> str | None:
    """A response as text; None when absent or empty (the require_responses step drops those)."""
    if value is None:
        return None
    if isinstance(value, list):  # a completion given as messages: exactly one assistant turn
        messages = parse_messages(value, limits) if value else []
        if not messages:
            return None
        if len(messages) != 1 or messages[0]["role"] != "assistant":
            raise Malformed(f"{what}_not_one_assistant_turn")
        return messages[0]["content"]
    text = check_text(value, what, limits["max_chars"])
    return text if text.strip() else None


def split_conversational(chosen, rejected, limits: dict):
    """Implicit prompt: chosen and rejected are full conversations sharing all but the last turn."""
    sides = [parse_messages(side, limits) if side else None for side in (chosen, rejected)]
    present = [s for s in sides if s]
    if not present:
        raise Malformed("missing_prompt", "both chosen and rejected are empty")
    for side in present:
        if side[-1]["role"] != "assistant":
            raise Malformed("completion_not_assistant")
    if len(present) == 2 and present[0][:-1] != present[1][:-1]:
        raise Malformed("prompt_mismatch", "chosen and rejected differ before the last turn")
    conversation = present[0][:-1]
    if not conversation or conversation[-1]["role"] != "user":
        raise Malformed("prompt_not_ending_with_user")
    texts = [side[-1]["content"] if side else None for side in sides]
    return conversation, texts[0], texts[1]


def parse_hh_transcript(text: str, limits: dict):
    """'\\n\\nHuman: ...\\n\\nAssistant: ...' -> (conversation, final assistant text)."""
    turns = []
    for chunk in ("\n\n" + text.lstrip("\n")).split("\n\nHuman:")[1:]:
        human, *assistants = chunk.split("\n\nAssistant:")
        turns.append({"role": "user", "content": human.strip()})
        turns.extend({"role": "assistant", "content": a.strip()} for a in assistants)
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise Malformed("bad_hh_transcript")
    return parse_prompt(turns[:-1], limits), turns[-1]["content"] or None


def pairs_from_chosen_rejected(record: dict, limits: dict):
    chosen, rejected = record.get("chosen"), record.get("rejected")
    prompt = next((record[k] for k in ("prompt", "conversation", "context") if record.get(k) is not None), None)
    if prompt is None and (isinstance(chosen, list) or isinstance(rejected, list)):
        return [split_conversational(chosen, rejected, limits) + (None,)]
    if prompt is None and any(isinstance(s, str) and "\n\nAssistant:" in s for s in (chosen, rejected)):
        sides = [parse_hh_transcript(s, limits) if isinstance(s, str) and s.strip() else None for s in (chosen, rejected)]
        present = [s for s in sides if s]
        if len(present) == 2 and present[0][0] != present[1][0]:
            raise Malformed("prompt_mismatch", "HH transcripts differ before the last turn")
        return [(present[0][0], sides[0] and sides[0][1], sides[1] and sides[1][1], None)]
    conversation = parse_prompt(prompt, limits)
    return [(conversation, response_text(chosen, "chosen", limits), response_text(rejected, "rejected", limits), None)]


def rated_responses(record: dict, limits: dict) -> list[tuple[str, float]]:
    if "completions" in record:
        completions = record["completions"]
        if not isinstance(completions, list):
            raise Malformed("completions_not_a_list")
        rated = []
        for completion in completions:
            if not isinstance(completion, dict):
                raise Malformed("completion_not_an_object")
            text = next((completion[k] for k in TEXT_KEYS if k in completion), None)
            score = next((completion[k] for k in SCORE_KEYS if k in completion), None)
            rated.append((text, score))
    else:
        responses, scores = record["responses"], record["scores"]
        if not isinstance(responses, list) or not isinstance(scores, list) or len(responses) != len(scores):
            raise Malformed("responses_scores_mismatch")
        rated = list(zip(responses, scores))
    out = []
    for text, score in rated:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
            raise Malformed("score_not_a_number", repr(score)[:40])
        text = response_text(text, "response", limits)
        if text is not None:
            out.append((text, float(score)))
    if len(out) < 2:
        raise Malformed("fewer_than_two_responses")
    return out


def candidate_pairs(rated: list[tuple[str, float]], strategy: str) -> list[tuple[str, str, float]]:
    """(better, worse, score gap) candidates; a gap of 0 is a tie, which the caller drops."""
    order = sorted(range(len(rated)), key=lambda i: -rated[i][1])  # stable: first best wins ties
    best, worst = order[0], order[-1]
    if strategy == "best_vs_worst":
        index_pairs = [(best, worst)]
    elif strategy == "best_vs_all":
        index_pairs = [(best, i) for i in order[1:]]
    elif strategy == "all_pairs":
        index_pairs = list(itertools.combinations(order, 2))
    else:
        raise ValueError(f"data.binarize={strategy!r}: choose one of {BINARIZE_STRATEGIES}")
    return [(rated[a][0], rated[b][0], rated[a][1] - rated[b][1]) for a, b in index_pairs]


def parse_record(record, *, source: str, source_record: str, limits: dict, binarize: str) -> list[dict]:
    """One input record -> pair rows (a tie becomes a row dropped at stage `binarize`)."""
    if not isinstance(record, dict):
        raise Malformed("not_an_object", type(record).__name__)
    if "chosen" in record or "rejected" in record:
        triples = pairs_from_chosen_rejected(record, limits)
    elif "completions" in record or ("responses" in record and "scores" in record):
        conversation = parse_prompt(record.get("prompt", record.get("instruction")), limits)
        triples = [(conversation, w, l, gap) for w, l, gap in candidate_pairs(rated_responses(record, limits), binarize)]
    elif {"response1", "response2", "overall_preference"} <= record.keys():
        conversation = parse_prompt(record.get("context", record.get("prompt")), limits)
        preference = record["overall_preference"]
        if isinstance(preference, bool) or not isinstance(preference, (int, float)) or not -3 <= preference <= 3:
            raise Malformed("bad_preference_value", repr(preference)[:40])
        first, second = (response_text(record[k], k, limits) for k in ("response1", "response2"))
        # HelpSteer3: negative means response1 is better
        chosen, rejected = (first, second) if preference < 0 else (second, first)
        triples = [(conversation, chosen, rejected, float(abs(preference)))]
    else:
        raise Malformed("unknown_format", ",".join(sorted(record))[:80])

    total_chars = sum(len(m["content"]) for m in triples[0][0])
    if total_chars > limits["max_chars"]:
        raise Malformed("too_long", f"conversation has {total_chars} chars > {limits['max_chars']}")

    rows = []
    for index, (conversation, chosen, rejected, margin) in enumerate(triples):
        row = new_pair(conversation, chosen, rejected, source=source, source_record=source_record,
                       record_pair_index=index, margin=margin)
        if margin == 0.0:
            record_decision(row, stage="binarize", status=DROPPED, reason="tied_scores")
        rows.append(row)
    return rows


def decode_line(line: bytes, max_line_bytes: int):
    """Raw JSONL bytes -> a JSON value; raises Malformed for bytes that are not one JSON value."""
    if len(line) > max_line_bytes:
        raise Malformed("line_too_long", f"{len(line)} bytes > {max_line_bytes}")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Malformed("invalid_utf8", str(err)[:80]) from None
    if not text.strip():
        raise Malformed("empty_line")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise Malformed("bad_json", str(err)[:80]) from None
