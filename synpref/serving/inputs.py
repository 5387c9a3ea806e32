"""A request's body and texts -> token ids, the way the client that sent them expects.

- the body: refused with 413 past `max_request_bytes` before it is parsed, 400 when it is not UTF-8
  JSON holding an object, or when a string holds a lone surrogate (JSON allows "\\ud800", no
  tokenizer can encode it);
- chat messages: the model's chat template (tokenize=False) with add_generation_prompt /
  continue_final_message, as vLLM renders them; a template that fails on them is a 400;
- texts: the tokenizer with or without special tokens, as the route's client expects (vLLM: with for
  `input`, without for `messages`; OpenRLHF: without, its queries hold them);
- token ids: taken as they are, checked against the vocabulary;
- length: over max_length is a 400 in vLLM's words, unless the request asks to truncate
  (truncate_prompt_tokens; -1 = max_length) on a side (`left` keeps the end, `right` the start).
"""

from __future__ import annotations

import json

from synpref.serving.errors import ApiError


def parse_json(raw: bytes, max_bytes: int):
    if len(raw) > max_bytes:
        raise ApiError(413, f"the request body is {len(raw)} bytes; this server takes at most {max_bytes}: "
                       "split the request")
    if not raw:
        raise ApiError(400, "empty request body: send a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ApiError(400, f"the body is not UTF-8: {error}") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise ApiError(400, f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(data).__name__}")
    check_strings(data)
    return data


def check_strings(value, where: str = "body") -> None:
    """A 400 naming the first string that holds a lone surrogate."""
    stack = [(value, where)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, f"{path} holds a lone surrogate (invalid Unicode); send valid UTF-16 pairs "
                               "or UTF-8 text", param=path) from None
        elif isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path != "body" else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))


def chat_text(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False,
              continue_final_message: bool = False, chat_template_kwargs: dict | None = None) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             continue_final_message=continue_final_message,
                                             **(chat_template_kwargs or {}))
    except Exception as error:  # jinja's TemplateError and the template's own raise_exception: the messages' fault
        raise ApiError(400, f"the model's chat template refused these messages: {error}", param="messages") from None


def encode_texts(tokenizer, texts: list[str], *, add_special_tokens: bool) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"] if texts else []


def check_ids(ids: list[list[int]], vocab_size: int, what: str) -> None:
    for i, seq in enumerate(ids):
        if not seq:
            raise ApiError(400, f"{what}[{i}] is empty (no tokens to score)", param=what)
        bad = [t for t in seq if not 0 <= t < vocab_size]
        if bad:
            raise ApiError(400, f"{what}[{i}] holds token id {bad[0]}, outside the vocabulary (0..{vocab_size - 1})",
                           param=what)


def fit(ids: list[list[int]], *, max_length: int, what: str, truncate_prompt_tokens: int | None = None,
        side: str = "right") -> tuple[list[list[int]], list[bool]]:
    """(ids within the length limit, which were cut). Without truncation an over-long one is a 400."""
    if truncate_prompt_tokens is None:
        for i, seq in enumerate(ids):
            if len(seq) > max_length:
                raise ApiError(400, f"This model's maximum context length is {max_length} tokens (max_length="
                               f"{max_length}). However, {what}[{i}] has {len(seq)} input tokens: shorten it, or send "
                               "truncate_prompt_tokens (-1 = max_length)", param=what)
        return ids, [False] * len(ids)
    limit = max_length if truncate_prompt_tokens == -1 else truncate_prompt_tokens
    if limit > max_length:
        raise ApiError(400, f"`truncate_prompt_tokens`={limit} cannot be greater than max_length={max_length}",
                       param="truncate_prompt_tokens")
    if limit < 1:
        raise ApiError(400, "truncate_prompt_tokens must be -1 or at least 1", param="truncate_prompt_tokens")
    cut = [len(seq) > limit for seq in ids]
    kept = [(seq[-limit:] if side == "left" else seq[:limit]) if c else seq for seq, c in zip(ids, cut)]
    return kept, cut
