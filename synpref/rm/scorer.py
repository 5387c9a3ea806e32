"""Reward-model inference in one process: token ids in, one reward per sequence out.

The one forward path behind every score synpref serves or evaluates: a Serve replica
(synpref.serving.replica), the in-process mode of jobs/evaluate.py, and the tests' reference all
call `RewardScorer.score_ids` (a replica with backend=vllm scores the same token ids through
synpref.rm.vllm_scorer instead). Texts are made with synpref.rm.format (chat template, BOS strip) and
encoded with its `encode`; the reward is read at each sequence's last real token
(`rm_format.last_token_scores`, by attention mask, which is what vLLM's LAST pooling does too, so a
text that ends in the pad token is still read at its end).

A batch is cut into length-sorted micro-batches of at most `max_tokens_per_forward` padded tokens,
so one long sequence does not pad a hundred short ones to its length.
"""

from __future__ import annotations

from synpref.rm.format import encode, last_token_scores, pad_batch, rm_text

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda")


def torch_dtype(dtype: str, device: str):
    """`auto` is float32 on CPU (this CPU has no fast bf16) and bfloat16 on CUDA."""
    import torch

    if dtype == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:  # Llama-3 style tokenizers ship none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def length_groups(lengths: list[int], max_tokens: int, max_rows: int) -> list[list[int]]:
    """Indices sorted by length, cut so that rows x longest <= max_tokens and rows <= max_rows.

    A sequence longer than max_tokens gets a group of its own (it has to run somewhere)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending, so lengths[i] is the longest of current + [i]
        if current and ((len(current) + 1) * lengths[i] > max_tokens or len(current) >= max_rows):
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


class RewardScorer:
    """A sequence-classification reward model (num_labels=1) and its tokenizer, ready to score."""

    def __init__(self, model_path: str, *, device: str = "cpu", dtype: str = "auto",
                 max_tokens_per_forward: int = 32768, max_rows_per_forward: int = 64,
                 torch_threads: int | None = None):
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if device not in DEVICES or dtype not in DTYPES:
            raise ValueError(f"device={device!r} dtype={dtype!r}: choose device in {DEVICES}, dtype in {DTYPES}")
        if torch_threads:
            torch.set_num_threads(int(torch_threads))
        config = AutoConfig.from_pretrained(model_path)
        if getattr(config, "num_labels", 1) != 1 and "ForSequenceClassification" in str(config.architectures):
            raise ValueError(f"{model_path}: a reward model has num_labels=1, this one has {config.num_labels}")
        self.model_path = model_path
        self.device = device
        self.tokenizer = load_tokenizer(model_path)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=1, dtype=torch_dtype(dtype, device)).to(device).eval()
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_tokens_per_forward = max_tokens_per_forward
        self.max_rows_per_forward = max_rows_per_forward

    # --- text -> ids (the shared rm_format path) ---------------------------------------------------

    def texts(self, items: list[tuple[list[dict], str]]) -> list[str]:
        return [rm_text(self.tokenizer, conversation, response) for conversation, response in items]

    def encode(self, texts: list[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
        return encode(self.tokenizer, texts, max_length)

    # --- ids -> rewards ----------------------------------------------------------------------------

    def score_ids(self, ids: list[list[int]]) -> list[float]:
        """One reward per token-id sequence, in input order."""
        import torch

        if any(len(x) == 0 for x in ids):
            raise ValueError("cannot score an empty token sequence")
        scores = [0.0] * len(ids)
        with torch.inference_mode():
            for group in length_groups([len(x) for x in ids], self.max_tokens_per_forward,
                                       self.max_rows_per_forward):
                input_ids, mask = pad_batch([ids[i] for i in group], self.tokenizer.pad_token_id)
                rewards = self._forward(input_ids.to(self.device), mask.to(self.device))
                for i, reward in zip(group, rewards.float().cpu().tolist()):
                    scores[i] = reward
        return scores

    def score_pairs(self, chosen: list[list[int]], rejected: list[list[int]],
                    share_prompt: bool = True) -> tuple[list[float], list[float]]:
        """Rewards of chosen[i] and rejected[i]. share_prompt: one row per pair, the tokens both start
        with computed once (synpref.rm.shared_prompt; models whose attention takes no 4D mask fall
        back to two rows)."""
        import torch

        from synpref.rm.shared_prompt import pack, packed_length, shared_length, shared_rewards, unsupported

        if not share_prompt or unsupported(self.model):
            scores = self.score_ids(chosen + rejected)
            return scores[:len(chosen)], scores[len(chosen):]
        shared = [shared_length(c, r) for c, r in zip(chosen, rejected)]
        out_chosen, out_rejected = [0.0] * len(chosen), [0.0] * len(chosen)
        lengths = [packed_length(c, r, s) for c, r, s in zip(chosen, rejected, shared)]
        with torch.inference_mode():
            for group in length_groups(lengths, self.max_tokens_per_forward, self.max_rows_per_forward):
                layout = pack([(chosen[i], rejected[i], shared[i]) for i in group], self.tokenizer.pad_token_id)
                r_chosen, r_rejected = shared_rewards(self.model, self.model, layout, self.device)
                for i, a, b in zip(group, r_chosen.cpu().tolist(), r_rejected.cpu().tolist()):
                    out_chosen[i], out_rejected[i] = a, b
        return out_chosen, out_rejected

    def _forward(self, input_ids, attention_mask):
        # The backbone's hidden states through the score head at every position, then the value
        # at the last real token: the same head and pooling as *ForSequenceClassification, but
        # located by the attention mask instead of by searching for pad-token ids.
        backbone = getattr(self.model, self.model.base_model_prefix)
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.model.score(hidden)
        return last_token_scores(logits, attention_mask)

    def score(self, items: list[tuple[list[dict], str]], max_length: int) -> list[float]:
        """Rewards of (conversation, response) items; left-truncated past max_length like training."""
        ids, _ = self.encode(self.texts(items), max_length)
        return self.score_ids(ids)
