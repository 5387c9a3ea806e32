"""The pieces of reward-model training that need no cluster: loss, batching, DeepSpeed config."""

import math
import random

import pytest
import torch

from synpref.training.loss import bradley_terry_loss
from synpref.training.ds_config import deepspeed_config, gradient_accumulation, lr_lambda
from synpref.training.batches import TokenizedPair, collate, collate_shared, length_grouped, padding_fraction

TRAIN = {"micro_batch_size": 4, "global_batch_size": 32, "zero_stage": 3, "offload_optimizer": True,
         "offload_params": True, "contiguous_gradients": None, "precision": "bf16", "max_grad_norm": 1.0,
         "lr": 1e-5, "weight_decay": 0.0}


def test_bt_loss_values():
    r_w, r_l = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    expected = (-math.log(1 / (1 + math.exp(-2))) + math.log(2)) / 2
    assert bradley_terry_loss(r_w, r_l).item() == pytest.approx(expected, rel=1e-6)
    # a margin of 2 on the first pair makes it look like a tie
    assert bradley_terry_loss(r_w, r_l, margin=torch.tensor([2.0, 0.0])).item() == pytest.approx(math.log(2), rel=1e-6)
    # centering adds coefficient * mean((r_w + r_l)^2) = 0.01 * (4 + 0) / 2
    assert (bradley_terry_loss(r_w, r_l, center_coefficient=0.01) - bradley_terry_loss(r_w, r_l)).item() == pytest.approx(0.02)


def test_length_grouping_cuts_padding():
    rng = random.Random(0)
    pairs = [TokenizedPair([1] * rng.randint(5, 300), [1] * rng.randint(5, 300)) for _ in range(256)]
    grouped = [collate(b, 0) for b in length_grouped(pairs, 8, random.Random(1))]
    plain = [collate(pairs[i:i + 8], 0) for i in range(0, 256, 8)]
    assert sum(b.size for b in grouped) == 256
    # chosen and rejected of one pair share a tensor, so some padding stays (their lengths differ)
    assert padding_fraction(grouped) < 0.65 * padding_fraction(plain)


def test_collate_puts_chosen_then_rejected():
    batch = collate([TokenizedPair([5, 6, 7], [8], 1.5), TokenizedPair([9], [10, 11], 0.0)], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7], [9, 0, 0], [8, 0, 0], [10, 11, 0]]
    assert batch.attention_mask.sum(dim=1).tolist() == [3, 1, 1, 2]
    assert batch.margin.tolist() == [1.5, 0.0] and batch.real_tokens == 7 and batch.padded_tokens == 12


def test_deepspeed_config_and_accumulation():
    config = deepspeed_config(TRAIN, world_size=2, device="cpu")
    assert config["gradient_accumulation_steps"] == 4 and config["train_batch_size"] == 32
    assert config["zero_optimization"] == {"stage": 3, "contiguous_gradients": False,
                                           "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}}
    assert deepspeed_config(TRAIN, 2, "cuda")["zero_optimization"]["contiguous_gradients"]
    assert deepspeed_config({**TRAIN, "contiguous_gradients": True}, 2, "cpu")["zero_optimization"]["contiguous_gradients"]
    assert config["bf16"]["enabled"] and "optimizer" not in config
    with pytest.raises(ValueError, match="train.global_batch_size=30"):
        gradient_accumulation({**TRAIN, "global_batch_size": 30}, 2)


def test_lr_schedules():
    linear = lr_lambda("linear", warmup_steps=10, total_steps=110)
    assert linear(0) == pytest.approx(0.1) and linear(9) == pytest.approx(1.0)
    assert linear(60) == pytest.approx(0.5) and linear(110) == 0.0
    assert lr_lambda("constant", 10, 110)(0) == 1.0
    assert lr_lambda("constant_with_warmup", 10, 110)(4) == pytest.approx(0.5)


def test_freeze_lower_layers_leaves_top_blocks_norm_and_head(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from synpref.demo.tiny_models import build_tiny_model
    from synpref.training.worker import freeze_lower_layers

    model = AutoModelForSequenceClassification.from_pretrained(build_tiny_model(tmp_path / "m", kind="seq_cls"))
    n = freeze_lower_layers(model, 1)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("model.layers.1.", "model.norm.", "score.")) for name in trainable)
    assert any(name.startswith("model.layers.1.") for name in trainable)
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert freeze_lower_layers(model, 0) == sum(p.numel() for p in model.score.parameters()) + \
        sum(p.numel() for p in model.model.norm.parameters())


def test_collate_shared_lays_out_shared_then_both_tails():
    pairs = [TokenizedPair([1, 2, 3, 4], [1, 2, 3, 5, 6], 0.5), TokenizedPair([7, 8], [9], 0.0)]
    assert [p.shared for p in pairs] == [3, 0] and [p.packed_length for p in pairs] == [6, 3]
    batch = collate_shared(pairs, pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]]
    assert batch.position_ids[0].tolist() == [0, 1, 2, 3, 3, 4] and batch.position_ids[1, :3].tolist() == [0, 1, 0]
    assert batch.chosen_end.tolist() == [3, 1] and batch.rejected_end.tolist() == [5, 2]
    mask = batch.attention_mask[0, 0]
    assert mask[4].tolist() == [True, True, True, False, True, False]  # rejected's 5: the shared 1 2 3 and itself
    assert mask[3].tolist() == [True] * 4 + [False] * 2  # chosen's 4 never sees rejected tokens
    assert batch.attention_mask[1, 0, 2].tolist() == [False, False, True, False, False, False]
    assert batch.real_tokens == 9 + 3 and batch.computed_tokens == 9 and batch.padded_tokens == 12


def test_identical_texts_keep_a_token_of_their_own():
    assert TokenizedPair([1, 2, 3], [1, 2, 3]).shared == 2


@pytest.mark.parametrize("attention,device", [("sdpa", "cpu"), ("eager", "cpu"),
                                              pytest.param("sdpa", "cuda", marks=pytest.mark.gpu)])
def test_shared_layout_gives_the_rewards_of_separate_forwards(tmp_path, attention, device):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from synpref.demo.tiny_models import build_tiny_model
    from synpref.training.batches import tokenize_pairs
    from synpref.demo.synthetic import colour_pairs
    from synpref.training.worker import rewards

    class Engine:  # what DeepSpeed's engine is to rewards(): a callable holding .module
        def __init__(self, module):
            self.module = module

        def __call__(self, **inputs):
            return self.module(**inputs)

    folder = build_tiny_model(tmp_path / "m", kind="seq_cls")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation=attention).to(device).eval()
    pairs, _ = tokenize_pairs(colour_pairs(6, seed=3, filler_words=12), tokenizer, 256, "truncate")
    assert all(p.shared > 20 for p in pairs)  # the chat template and the prompt are common to both
    with torch.no_grad():
        separate = rewards(Engine(model), collate(pairs, tokenizer.pad_token_id), device)
        shared = rewards(Engine(model), collate_shared(pairs, tokenizer.pad_token_id), device)
    for a, b in zip(separate, shared):
        assert torch.allclose(a, b, atol=1e-4), (a, b)
    # and the loss backpropagates through the packed row
    r_w, r_l = rewards(Engine(model.train()), collate_shared(pairs, tokenizer.pad_token_id), device)
    bradley_terry_loss(r_w, r_l).backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


def test_an_empty_shard_tokenizes_to_nothing(tmp_path):
    from transformers import AutoTokenizer

    from synpref.demo.tiny_models import build_tiny_model
    from synpref.training.batches import tokenize_pairs

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "m", kind="seq_cls"))
    pairs, counts = tokenize_pairs([], tokenizer, 64, "truncate")
    assert pairs == [] and counts.pairs == 0
