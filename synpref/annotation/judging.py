"""Preference-aware labelling by LLM judges (DESIGN.md section 2, step 3): the judge prompt, the
candidate order, the answer check and the vote aggregation.

The prompt is the verification protocol (synpref.annotation.protocol: core principles + the guidelines matching
the pair's attributes), then up to k human-verified example pairs with their attributes and labels,
then the target pair. Responses appear as "Candidate 1" / "Candidate 2"; which one comes first is a
seeded hash of (seed, pair, judge, sample), so a re-run asks the same questions, and with
`ask_swapped` every sample is also asked in the other order. A sample whose two orders disagree is
position-inconsistent: recorded as such on its votes and left out of the count.

Two ways to ask (a judge's `mode`): `sampled` decodes a JSON verdict, `samples` times
(self-consistency); `logprob` asks each order once and reads the log-probabilities of the two
candidate numbers (synpref.annotation.logprob_judge). synpref.annotation.votes turns the answers into
the pair's label.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from synpref.annotation.attributes import clip, conversation_text, json_answer

CANDIDATES = ("Candidate 1", "Candidate 2")
ORIGINAL = "original"  # chosen shown as Candidate 1
SWAPPED = "swapped"


def verdict_schema(rationale: bool, max_rationale_chars: int = 300) -> dict:
    properties = {}
    if rationale:  # before the verdict, so a model that reasons does it first
        properties["rationale"] = {"type": "string", "maxLength": max_rationale_chars}
    properties["better"] = {"type": "string", "enum": list(CANDIDATES)}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def first_order(seed: int, pair_id: str, judge: str, sample: int) -> str:
    """The order a sample is first asked in: a reproducible coin flip per (seed, pair, judge, sample)."""
    digest = hashlib.blake2b(f"{seed}:{pair_id}:{judge}:{sample}".encode(), digest_size=8).digest()
    return ORIGINAL if digest[0] & 1 == 0 else SWAPPED


def candidates(pair: dict, order: str) -> tuple[str, str]:
    return (pair["chosen"], pair["rejected"]) if order == ORIGINAL else (pair["rejected"], pair["chosen"])


def attributes_text(pair: dict) -> str:
    desired = ", ".join(pair.get("desired_attributes") or [])
    return (f"Task category: {pair.get('task_category')}; objectivity: {pair.get('objectivity')}; "
            f"controversiality: {pair.get('controversiality')}\nDesired attributes: {desired}\n"
            f"Guideline: {pair.get('guideline')}")


def pair_block(pair: dict, order: str, max_chars: int) -> str:
    first, second = candidates(pair, order)
    return (f"Conversation:\n{conversation_text(pair['conversation'], max_chars)}\n\n{attributes_text(pair)}\n\n"
            f"{CANDIDATES[0]}:\n{clip(first, max_chars)}\n\n{CANDIDATES[1]}:\n{clip(second, max_chars)}")


def example_block(example: dict, index: int, seed: int, max_chars: int) -> str:
    """A verified pair shown as a solved example. D_gold stores pairs in the verified order (a pair the
    human flipped was turned round on import, synpref.verification.merge), so its chosen response is the better."""
    order = first_order(seed, example["pair_id"], "example", 0)
    better = CANDIDATES[0] if order == ORIGINAL else CANDIDATES[1]
    return f"Example {index}\n{pair_block(example, order, max_chars)}\n\nVerdict: {better} is better."


def judge_messages(pair: dict, order: str, guidelines: str, examples: list[dict], *, seed: int,
                   max_chars: int, rationale: bool, answer_prefix: str | None = None) -> list[dict]:
    """The judge's conversation. With `answer_prefix` (a logprob judge) the answer is the candidate's
    number: the conversation ends with the assistant's answer begun, so the next token is the number."""
    shown = "\n\n".join(example_block(e, i + 1, seed, max_chars) for i, e in enumerate(examples))
    if answer_prefix is not None:
        ask = f"Which candidate is better? Answer \"{CANDIDATES[0]}\" or \"{CANDIDATES[1]}\"."
    elif rationale:
        ask = 'Answer with JSON: {"rationale": "<one or two sentences>", "better": "Candidate 1" or "Candidate 2"}'
    else:
        ask = 'Answer with JSON: {"better": "Candidate 1" or "Candidate 2"}'
    system = ("You verify preference data. Decide which candidate response is better, following this "
              f"protocol.\n\n{guidelines}")
    parts = []
    if shown:
        parts.append(f"Verified examples, labelled by human annotators:\n\n{shown}")
    parts.append(f"Now the pair to judge.\n\n{pair_block(pair, order, max_chars)}\n\n{ask}")
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "\n\n---\n\n".join(parts)}]
    if answer_prefix is not None:
        messages.append({"role": "assistant", "content": answer_prefix})
    return messages


def check_verdict(text: str | None, n_tokens: int, max_tokens: int, order: str) -> tuple[dict | None, str | None]:
    """({"verdict": chosen|rejected, "rationale"}, None) or (None, why): empty_answer, truncated,
    invalid_json, schema_mismatch:<what>."""
    value, error = json_answer(text, n_tokens, max_tokens)
    if error:
        return None, error
    if not isinstance(value, dict) or value.get("better") not in CANDIDATES:
        return None, "schema_mismatch:better"
    shown_first = value["better"] == CANDIDATES[0]
    verdict = "chosen" if shown_first == (order == ORIGINAL) else "rejected"
    rationale = value.get("rationale")
    return {"verdict": verdict, "rationale": rationale if isinstance(rationale, str) else None}, None


def majority(verdicts: list[str]) -> str:
    """chosen / rejected by strict majority, else tie (also when there is nothing to count)."""
    counts = Counter(v for v in verdicts if v in ("chosen", "rejected"))
    if counts["chosen"] > counts["rejected"]:
        return "chosen"
    if counts["rejected"] > counts["chosen"]:
        return "rejected"
    return "tie"


def position_bias_counts(votes: list[dict]) -> tuple[int, int]:
    """(samples asked in both orders, those whose two orders disagreed) among one pair's votes."""
    samples = {(v["judge"], v["sample"]): v.get("position_consistent") for v in votes or []}
    return sum(c is not None for c in samples.values()), sum(c is False for c in samples.values())
