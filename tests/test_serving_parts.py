"""synpref.serving without a running Ray: the config (conf/serve_rm.yaml, conf/serve_deploy.yaml and
the app builder's args), jobs/serve_rm.py's refusals, the scorer's batching, and item batching."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from conftest import run_job
from synpref.eval.benchmarks import item_batches
from synpref.eval.loaders import EvalItem
from synpref.serving.scorer import length_groups
from synpref.serving.settings import config_problems, load_settings, model_specs

REPO = Path(__file__).resolve().parents[1]


def load_job_module():
    spec = importlib.util.spec_from_file_location("serve_rm_job", REPO / "jobs" / "serve_rm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_args_are_parsed_like_hydra_overrides():
    # `serve run jobs.serve_rm:app key=value` hands every value over as a string
    cfg = load_settings({"model": "/ckpt/hf", "batching.max_batch_size": "16", "replica.num_replicas": "2",
                         "ingress": {"num_cpus": 1}})
    assert cfg.batching.max_batch_size == 16 and cfg.replica.num_replicas == 2 and cfg.ingress.num_cpus == 1
    assert model_specs(cfg) == {"/ckpt/hf": {"path": "/ckpt/hf", "max_length": 4096}}
    named = load_settings({"models": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b", "max_length": 512}]})
    assert model_specs(named) == {"a": {"path": "/a", "max_length": 4096}, "b": {"path": "/b", "max_length": 512}}


@pytest.mark.parametrize("args,needle", [
    ({}, "no model to serve"),
    ({"model": "/a", "models": [{"name": "b", "path": "/b"}]}, "not both"),
    ({"models": [{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]}, "duplicate names"),
    ({"model": "/a", "device": "tpu"}, "device='tpu'"),
    ({"model": "/a", "device": "cuda"}, "replica.num_gpus"),
    ({"model": "/a", "batching": {"batch_wait_timeout_s": -1}}, "batching.batch_wait_timeout_s"),
    ({"model": "/a", "replica": {"max_ongoing_requests": 0}}, "replica.max_ongoing_requests"),
])
def test_config_problems_name_the_key_and_the_fix(args, needle):
    problems = config_problems(load_settings(args))
    assert any(needle in p for p in problems), problems


def test_default_config_has_no_problems_once_a_model_is_named():
    assert config_problems(load_settings({"model": "smollm2-135m-instruct"})) == []


def test_serve_deploy_config_validates_and_builds():
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load((REPO / "conf" / "serve_deploy.yaml").read_text()))
    (application,) = config.applications
    assert application.import_path == "jobs.serve_rm:app"
    # what Serve does with it: call the builder with the args (binding needs no running cluster)
    built = load_job_module().app(application.args)
    assert isinstance(built, Application)


def test_serve_job_refuses_a_public_bind_without_a_token():
    proc = run_job("serve_rm.py", "model=/ckpt/hf", "http.host=0.0.0.0", "auth.token_env=SYNPREF_TEST_NO_SUCH_VAR",
                   timeout=120)
    assert proc.returncode != 0
    assert "http.host=0.0.0.0" in proc.stderr and "SYNPREF_TEST_NO_SUCH_VAR" in proc.stderr


def test_length_groups_respect_the_token_budget():
    lengths = [5, 100, 7, 60, 6, 300]
    # sorted 5, 6, 7 | 60, 100 (2 x 100 = 200 fits) | 300 (alone: over the budget, it still has to run)
    assert length_groups(lengths, max_tokens=200, max_rows=3) == [[0, 4, 2], [3, 1], [5]]
    assert length_groups(lengths, max_tokens=10**6, max_rows=2) == [[0, 4], [2, 3], [1, 5]]


def test_item_batches_keep_items_whole():
    def item(n):
        return EvalItem("rmb", "x", str(n), [{"role": "user", "content": "q"}], ["r"] * n, [True] + [False] * (n - 1))

    items = [item(2), item(2), item(4), item(9), item(1)]
    assert item_batches(items, 4) == [[0, 1], [2], [3], [4]]
    assert item_batches(items, 100) == [[0, 1, 2, 3, 4]]


def test_scorer_matches_plain_transformers_on_mixed_lengths(tmp_path):
    """Length-sorted micro-batches, padding, and the reward read at the last real token: including a
    text that ends in the pad token, where searching input_ids for the pad id would read too early."""
    from serve_helpers import ReferenceRM
    from synpref.models import build_tiny_model
    from synpref.serving.scorer import RewardScorer

    path = build_tiny_model(tmp_path / "rm", kind="seq_cls", seed=5)
    scorer = RewardScorer(path, max_tokens_per_forward=256, max_rows_per_forward=2)
    ref = ReferenceRM(path)
    pad = scorer.tokenizer.pad_token
    texts = ["short", "a much longer text " * 12, "medium length text here", f"ends with the pad token{pad}"]
    ids, truncated = scorer.encode(texts, 512)
    assert not any(truncated) and ids[3][-1] == scorer.tokenizer.pad_token_id
    scores = scorer.score_ids(ids)
    assert scores[:3] == pytest.approx([ref.reward_ids(x) for x in ids[:3]], abs=1e-5)
    # transformers pools at the rightmost token that is not the pad id, which for the 4th text is an
    # earlier token; without a pad id (one unpadded sequence) it reads the last token, as vLLM does
    searched = ref.reward_ids(ids[3])
    ref.model.config.pad_token_id = None
    assert scores[3] == pytest.approx(ref.reward_ids(ids[3]), abs=1e-5)
    assert abs(scores[3] - searched) > 1e-4
