"""How a reward model sees a (conversation, response): the one formatting shared by training,
scoring and serving.

As the Skywork-Reward-V2 model cards do it: the tokenizer's chat template over the conversation
plus the assistant response, no system prompt of ours (a template's own default stays), and a
leading BOS stripped from the text when the tokenizer adds it again while encoding (so the ids are
those of vLLM's chat form: the template's text, no special tokens added).
Sequences over `max_length` are truncated from the left, so the end of the response (what the
score is read at) is kept, or reported for dropping; never cut silently.
"""

from __future__ import annotations


def adds_bos(tokenizer) -> bool:
    """Whether encoding with special tokens puts the BOS token in front (Llama's do; ChatML ones such as
    SmolLM2's, whose bos_token is the template's own <|im_start|>, do not)."""
    cached = getattr(tokenizer, "_synpref_adds_bos", None)
    if cached is None:
        bos_id = tokenizer.bos_token_id
        cached = bos_id is not None and tokenizer("", add_special_tokens=True)["input_ids"][:1] == [bos_id]
        tokenizer._synpref_adds_bos = cached
    return cached


def rm_text(tokenizer, conversation: list[dict], response: str) -> str:
    messages = [{"role": m["role"], "content": m["content"]} for m in conversation]
    messages.append({"role": "assistant", "content": response})
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and adds_bos(tokenizer):  # encoding adds it again: keep one
        text = text[len(bos):]
    return text


def encode(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    """Token ids per text, left-truncated to max_length; and which texts were truncated."""
    if not texts:  # a rank whose validation shard is empty (fewer validation pairs than workers)
        return [], []
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    truncated = [len(x) > max_length for x in ids]
    return [x[-max_length:] if t else x for x, t in zip(ids, truncated)], truncated


def pad_batch(ids: list[list[int]], pad_id: int):
    """Right-padded input_ids and attention_mask tensors (the score is read at the last real token)."""
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids, mask


def last_token_scores(logits, attention_mask):
    """The reward at each sequence's last real token, from per-token logits (batch, seq, 1)."""
    import torch

    last = attention_mask.sum(dim=1) - 1
    return logits[torch.arange(logits.shape[0]), last, 0]
