"""synpref.serving without a running Ray: the config (conf/serve_rm.yaml, conf/serve_deploy.yaml and
the app builder's args), jobs/serve_rm.py's refusals, the scorer's batching, and item batching."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from conftest import run_job
from synpref.eval.benchmarks import item_batches
from synpref.eval.items import EvalItem
from synpref.rm.scorer import length_groups
from synpref.serving.settings import config_problems, load_settings, model_specs

REPO = Path(__file__).resolve().parents[2]


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
    assert model_specs(cfg) == {"/ckpt/hf": {"path": "/ckpt/hf", "max_length": 4096, "aliases": []}}
    named = load_settings({"models": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b", "max_length": 512}]})
    assert model_specs(named) == {"a": {"path": "/a", "max_length": 4096, "aliases": []},
                                  "b": {"path": "/b", "max_length": 512, "aliases": []}}


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
    assert config_problems(load_settings({"model": "smollm2-135m-instruct", "backend": "vllm"})) == []


VLLM = {"model": "/a", "backend": "vllm"}


@pytest.mark.parametrize("args,needle", [
    ({"model": "/a", "backend": "onnx"}, "backend='onnx': choose transformers or vllm"),
    ({**VLLM, "vllm.max_model_len": "1024"}, "vllm.max_model_len=1024 is below max_length=4096"),
    ({**VLLM, "vllm.max_model_len": "0"}, "vllm.max_model_len must be at least 1"),
    ({**VLLM, "vllm.gpu_memory_utilization": "1.5"}, "vllm.gpu_memory_utilization=1.5"),
    ({**VLLM, "vllm.tensor_parallel_size": "2"},
     "vllm.tensor_parallel_size=2 needs device=cuda and replica.num_gpus=2"),
    ({**VLLM, "device": "cuda", "replica.num_gpus": "1", "vllm.tensor_parallel_size": "2"}, "replica.num_gpus=2"),
    ({**VLLM, "vllm.max_num_seqs": "0"}, "vllm.max_num_seqs must be at least 1"),
    ({**VLLM, "vllm.enforce_eager": "maybe"}, "vllm.enforce_eager='maybe'"),
    ({**VLLM, "vllm.cpu_kvcache_space_gib": "0.5"}, "vllm.cpu_kvcache_space_gib=0.5: a whole number of GiB"),
])
def test_vllm_backend_config_problems_name_the_key_and_the_fix(args, needle):
    problems = config_problems(load_settings(args))
    assert any(needle in p for p in problems), problems


def test_vllm_settings_are_checked_only_with_backend_vllm():
    ignored = {"model": "/a", "vllm.max_model_len": "8", "vllm.tensor_parallel_size": "4"}
    assert config_problems(load_settings(ignored)) == []
    fine = {**VLLM, "max_length": "512", "vllm.max_model_len": "512", "device": "cuda", "replica.num_gpus": "2",
            "vllm.tensor_parallel_size": "2"}
    assert config_problems(load_settings(fine)) == []


def test_vllm_engine_args_and_cpu_environment(monkeypatch):
    from synpref.rm.vllm_scorer import cpu_environment, engine_args

    options = dict(load_settings(VLLM).vllm)
    kwargs = engine_args("/m", device="cpu", dtype="auto", max_length=512, options=options)
    assert kwargs["runner"] == "pooling" and kwargs["dtype"] == "float32" and kwargs["max_model_len"] == 512
    assert kwargs["skip_tokenizer_init"] and kwargs["enforce_eager"] and "max_num_seqs" not in kwargs
    cuda = engine_args("/m", device="cuda", dtype="auto", max_length=512,
                       options={**options, "max_model_len": 2048, "max_num_seqs": 8})
    assert (cuda["dtype"], cuda["max_model_len"], cuda["max_num_seqs"]) == ("bfloat16", 2048, 8)
    env = cpu_environment({**options, "cache_dir": "/tmp/vc", "cpu_omp_threads_bind": "0-1"})
    assert env == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0-1", "VLLM_CACHE_ROOT": "/tmp/vc",
                   "TORCHINDUCTOR_CACHE_DIR": "/tmp/vc/inductor"}
    # null: the environment's binding if it has one, else every core this process may run on
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "3")
    assert cpu_environment(options)["VLLM_CPU_OMP_THREADS_BIND"] == "3"
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND")
    bound = cpu_environment(options)["VLLM_CPU_OMP_THREADS_BIND"]
    assert set(parse_cores(bound)) == os.sched_getaffinity(0)


def parse_cores(spec: str) -> list[int]:
    """'0-3,6' -> [0, 1, 2, 3, 6]"""
    cores = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cores += range(int(first), int(last or first) + 1)
    return cores


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
    from synpref.demo.tiny_models import build_tiny_model
    from synpref.rm.scorer import RewardScorer

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
