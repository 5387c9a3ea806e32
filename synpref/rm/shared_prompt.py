"""One forward per pair with the conversation computed once: the layout training (train.share_prompt) and
scoring (score's transformers.share_prompt) share.

A row holds the tokens chosen and rejected have in common at the start (the chat-templated
conversation) once, then the chosen tail, then the rejected tail, right-padded. Under a 4D attention
mask each tail sees the shared part and itself only, and position ids restart both tails where the
shared part ends, so each tail's last hidden state is what a forward of that sequence alone gives.
The reward is read from the score head's per-token output at each tail's last token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def shared_length(chosen: list[int], rejected: list[int]) -> int:
    """Tokens the two have in common at the start, leaving each at least one of its own."""
    limit = min(len(chosen), len(rejected)) - 1
    n = 0
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    return n


def packed_length(chosen: list[int], rejected: list[int], shared: int | None = None) -> int:
    return len(chosen) + len(rejected) - (shared_length(chosen, rejected) if shared is None else shared)


@dataclass
class SharedLayout:
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, 1, L, L) bool, True = may attend
    position_ids: torch.Tensor  # (B, L)
    chosen_end: torch.Tensor  # (B,) column of the chosen tail's last token
    rejected_end: torch.Tensor  # (B,)
    computed_tokens: int  # real tokens in the rows (each shared part once)


def pack(pairs: list[tuple[list[int], list[int], int]], pad_id: int) -> SharedLayout:
    """(chosen ids, rejected ids, shared length) per pair -> one padded row per pair and its mask."""
    width = max(len(c) + len(r) - s for c, r, s in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(pairs), width), dtype=torch.long)
    # segment per column: 0 shared, 1 chosen tail, 2 rejected tail, 3 padding
    segment = torch.full((len(pairs), width), 3, dtype=torch.long)
    chosen_end, rejected_end = [], []
    for i, (chosen, rejected, s) in enumerate(pairs):
        c, r = len(chosen), len(rejected)
        input_ids[i, :c] = torch.tensor(chosen)
        input_ids[i, c:c + r - s] = torch.tensor(rejected[s:])
        position_ids[i, :c] = torch.arange(c)
        position_ids[i, c:c + r - s] = torch.arange(s, r)
        segment[i, :s], segment[i, s:c], segment[i, c:c + r - s] = 0, 1, 2
        chosen_end.append(c - 1)
        rejected_end.append(c + r - s - 1)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    query, key = segment[:, :, None], segment[:, None, :]
    # a column sees earlier columns of the shared part and of its own segment; padding sees padding,
    # so no softmax row is empty
    mask = causal & ((key == 0) | (key == query))
    return SharedLayout(input_ids, mask[:, None], position_ids, torch.tensor(chosen_end), torch.tensor(rejected_end),
                        computed_tokens=sum(len(c) + len(r) - s for c, r, s in pairs))


def unsupported(model) -> str | None:
    """Why `model` cannot take the layout, or None when it can."""
    implementation = model.config._attn_implementation
    if implementation not in ("sdpa", "eager"):
        return (f"the shared layout needs attn_implementation sdpa or eager (the model uses {implementation}, "
                "which cannot take a per-pair 4D mask)")
    if not hasattr(model, "score"):
        return f"the shared layout reads the score head per token, and {type(model).__name__} has no .score"
    return None


def shared_rewards(forward, model, layout: SharedLayout, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards, rejected rewards) of the layout's pairs. `forward` runs `model` (the model
    itself, or a DeepSpeed engine wrapping it, so that its hooks and gradients apply)."""
    mask = layout.attention_mask.to(device)
    if model.config._attn_implementation == "eager":  # eager adds the mask to the logits; sdpa takes booleans
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    captured = []
    hook = model.score.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        forward(input_ids=layout.input_ids.to(device), attention_mask=mask, position_ids=layout.position_ids.to(device))
    finally:
        hook.remove()
    per_token = captured[-1].squeeze(-1).float()
    rows = torch.arange(per_token.shape[0], device=per_token.device)
    return per_token[rows, layout.chosen_end.to(device)], per_token[rows, layout.rejected_end.to(device)]
