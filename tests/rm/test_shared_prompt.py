"""Scoring with the conversation computed once gives the rewards of separate forwards (to 1e-4), with
either attention kernel that takes a 4D mask, on pairs that share much, little or nothing."""

import random

import pytest

from synpref.demo.tiny_models import build_tiny_model
from synpref.rm.format import rm_text
from synpref.rm.scorer import RewardScorer
from synpref.rm.shared_prompt import pack, shared_length


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("rm") / "rm", kind="seq_cls", seed=3)
    # a token budget that splits the pairs over several micro-batches of different widths
    return RewardScorer(path, max_tokens_per_forward=600, max_rows_per_forward=5)


def encoded_pairs(scorer: RewardScorer, n: int, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    words = "why how sky blue red because light water the of and".split()
    chosen, rejected = [], []
    for i in range(n):
        conversation = [{"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(1, 60)))}]
        if i % 3 == 0:
            conversation += [{"role": "assistant", "content": "It depends."}, {"role": "user", "content": "Say more."}]
        a, b = (" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(2))
        ids, _ = scorer.encode([rm_text(scorer.tokenizer, conversation, a), rm_text(scorer.tokenizer, conversation, b)],
                               max_length=96 if i % 4 else 40)  # some left-truncated: their starts differ
        chosen.append(ids[0])
        rejected.append(ids[1])
    chosen.append([5, 6, 7])  # nothing in common
    rejected.append([8, 9])
    return chosen, rejected


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_shared_scores_equal_separate_forwards(scorer, attention):
    scorer.model.config._attn_implementation = attention
    chosen, rejected = encoded_pairs(scorer, 24, seed=attention == "eager")
    separate = scorer.score_ids(chosen + rejected)
    shared_chosen, shared_rejected = scorer.score_pairs(chosen, rejected)
    n = len(chosen)
    assert max(abs(a - b) for a, b in zip(shared_chosen + shared_rejected, separate)) < 1e-4
    assert separate[:n] != separate[n:]  # the two sides really differ
    assert scorer.score_pairs(chosen, rejected, share_prompt=False) == (separate[:n], separate[n:])
    shared = [shared_length(c, r) for c, r in zip(chosen, rejected)]
    assert shared[-1] == 0 and sum(s > 20 for s in shared) > n // 3  # the chat template and prompt are common


def test_pack_counts_each_shared_token_once():
    layout = pack([([1, 2, 3, 4], [1, 2, 3, 5, 6], 3), ([7, 8], [9], 0)], pad_id=0)
    assert layout.computed_tokens == 6 + 3 and layout.input_ids.shape == (2, 6)
    assert layout.input_ids[0].tolist() == [1, 2, 3, 4, 5, 6]
    assert layout.position_ids[0].tolist() == [0, 1, 2, 3, 3, 4]  # the rejected tail restarts at 3
    assert layout.chosen_end.tolist() == [3, 1] and layout.rejected_end.tolist() == [5, 2]
    mask = layout.attention_mask[0, 0]
    assert not mask[4, 3] and mask[4, 2] and mask[5, 4]  # rejected's tail never sees chosen's
