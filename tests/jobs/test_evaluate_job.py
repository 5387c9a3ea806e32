"""jobs/evaluate.py end to end: the fixture files of all seven benchmarks scored over HTTP by a real
Serve app (a tiny random reward model), then in process; results.json, results.md and scores.jsonl
checked against rewards computed with plain transformers and the harness's own scoring.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_job
from serve_helpers import ReferenceRM, serve_app
from synpref.eval.benchmarks import DEFAULT_PATHS, benchmark_paths, load_benchmarks
from synpref.eval.harness import score_items
from synpref.eval.headline import PAPER_BENCHMARKS, paper_average
from synpref.demo.tiny_models import build_tiny_model

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
TOKEN, TOKEN_ENV = "eval-token-31c", "SYNPREF_TEST_EVAL_TOKEN"
# items per benchmark in tests/fixtures/benchmarks (counted by the loaders, pinned here so that a
# benchmark silently not loaded by the job shows up)
FIXTURE_ITEMS = {"rewardbench": 7, "rewardbench2": 5, "ppe_preference": 3, "ppe_correctness": 2, "rmb": 5,
                 "rm_bench": 2, "judgebench": 4}
TOL = 1e-5  # padded server batches vs one unpadded sequence: float32 rounding only (see test_serve.py)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("rm") / "tiny-rm", kind="seq_cls", seed=3)


@pytest.fixture(scope="module")
def url(model):
    args = {"model": model, "model_name": "tiny-rm", "max_length": 1024, "torch_threads": 1,
            "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.005}}
    with serve_app(args, token_env=TOKEN_ENV, token=TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def fixture_items():
    items, missing = load_benchmarks(benchmark_paths(str(FIXTURES), DEFAULT_PATHS))
    assert not missing and {k: len(v) for k, v in items.items()} == FIXTURE_ITEMS
    return [item for benchmark_items in items.values() for item in benchmark_items]


@pytest.fixture(scope="module")
def reference_scores(model, fixture_items) -> dict[str, list[float]]:
    ref = ReferenceRM(model)
    return {item.key: [ref.reward(ref.text(item.conversation, r)) for r in item.responses] for item in fixture_items}


def evaluate(*overrides: str, token: str = TOKEN):
    proc = run_job("evaluate.py", f"benchmarks.root={FIXTURES}", f"server.token_env={TOKEN_ENV}", *overrides,
                   timeout=300, env={TOKEN_ENV: token})
    return proc


def read_scores(output: Path) -> dict[str, list[float]]:
    return {row["key"]: row["scores"] for row in map(json.loads, (output / "scores.jsonl").read_text().splitlines())}


def test_http_evaluation_of_all_seven(url, tmp_path, fixture_items, reference_scores):
    out = tmp_path / "http"
    proc = evaluate(f"server.url={url}", f"output={out}", "batch_size=8", "server.concurrency=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())

    assert results["missing"] == {} and results["paper_average_complete"] is True
    assert results["items_per_benchmark"] == FIXTURE_ITEMS
    assert results["meta"]["model"] == "tiny-rm" and results["meta"]["truncated"] == 0
    assert results["meta"]["responses"] == sum(len(i.responses) for i in fixture_items)

    # every reward that came over HTTP equals the plain-transformers one for the same response
    scores = read_scores(out)
    assert set(scores) == set(reference_scores)
    for key, expected in reference_scores.items():
        assert scores[key] == pytest.approx(expected, abs=TOL), key

    # the metrics are the harness's official scoring of those rewards, and the average the paper's
    expected = score_items(fixture_items, [reference_scores[i.key] for i in fixture_items])
    assert set(results["benchmarks"]) == set(PAPER_BENCHMARKS)
    for name in PAPER_BENCHMARKS:
        assert results["benchmarks"][name]["score"] == pytest.approx(expected[name]["score"], abs=1e-6), name
    assert results["paper_average"] == pytest.approx(paper_average(expected))

    report = (out / "results.md").read_text()
    judgebench = results["benchmarks"]["judgebench"]
    for line in ("| Benchmark | Score | Paper's metric | Official aggregate | Items |",
                 f"| **Average of the 7 (paper)** | **{results['paper_average']:.2f}** |",
                 f"micro-average over pairs (official): {judgebench['overall_micro']:.2f}",
                 f"| category mean (paper) | {judgebench['overall_macro']:.2f} | 4 |",
                 "## RewardBench 2", "| Ties: tied_accuracy |", "## RM-Bench", "| chat hard |",
                 "| mmlu_pro pairwise |", "| pairwise helpfulness (micro) |"):
        assert line in report, line
    assert json.loads((out / "_SUCCESS").read_text())["fingerprint"]

    # the same run again finds its finished output and does nothing
    again = evaluate(f"server.url={url}", f"output={out}", "batch_size=8", "server.concurrency=3")
    assert again.returncode == 0 and "already holds this run" in again.stdout


def test_in_process_evaluation_matches_http(url, model, tmp_path, reference_scores):
    out = tmp_path / "local"
    proc = evaluate(f"model={model}", f"output={out}", "batch_size=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = read_scores(out)
    for key, expected in reference_scores.items():
        assert scores[key] == pytest.approx(expected, abs=TOL), key
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["source"] == "in process" and results["paper_average_complete"] is True


def test_missing_benchmarks_are_reported_not_fatal(url, tmp_path):
    out = tmp_path / "partial"
    proc = evaluate(f"server.url={url}", f"output={out}", f"benchmarks.paths.rmb={tmp_path / 'no-rmb'}",
                    "benchmarks.paths.rewardbench2=not-there", "limit=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["missing"]) == {"rmb", "rewardbench2"}
    assert "no files at" in results["missing"]["rmb"]
    assert results["paper_average_complete"] is False
    present = [n for n in PAPER_BENCHMARKS if n not in ("rmb", "rewardbench2")]
    assert results["paper_average"] == pytest.approx(
        sum(results["benchmarks"][n]["score"] for n in present) / len(present))
    assert all(n <= 2 for n in results["items_per_benchmark"].values())
    assert results["sample"]["items"]["rewardbench"] == {"scored": 2, "of": FIXTURE_ITEMS["rewardbench"]}
    report = (out / "results.md").read_text()
    assert "| RMB | missing |" in report and "Average of 5 present (NOT the paper's 7)" in report
    assert "A sample, not the whole benchmarks: at most 2 items of each" in report
    assert f"RewardBench 2 of {FIXTURE_ITEMS['rewardbench']}" in report


def test_limit_on_the_official_checkouts_samples_every_subset(model, shared_benchmarks, tmp_path):
    # The shared folder holds RM-Bench, JudgeBench and RMB as their repos lay them out (RMB's eval/result/
    # holds another model's results); the default paths must load them, and limit=40 must spread
    # over their subsets. In process, no server: about 15 s on two CPU cores.
    out = tmp_path / "official"
    proc = run_job("evaluate.py", f"model={model}", f"benchmarks.root={shared_benchmarks}", "limit=40",
                   f"output={out}", "max_length=512", "torch_threads=2", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ArmoRM-Llama3-8B-v0.1_result.json: not RMB data" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert set(results["benchmarks"]) == {"rmb", "rm_bench", "judgebench"}
    assert results["items_per_benchmark"] == {"rmb": 40, "rm_bench": 40, "judgebench": 40}
    assert results["sample"]["items"]["rmb"] == {"scored": 40, "of": 18329}
    metrics = results["benchmarks"]
    assert set(metrics["judgebench"]["categories"]) == {"knowledge", "reasoning", "math", "coding"}
    assert set(metrics["rm_bench"]["domains"]) == {"chat", "code", "safety"}  # math_filtered.json is not shared
    assert {kind: set(metrics["rmb"][kind]["micro"]) for kind in ("pairwise", "bon")} == {
        "pairwise": {"helpfulness", "harmlessness"}, "bon": {"helpfulness", "harmlessness"}}
    assert "A sample, not the whole benchmarks: at most 40 items of each" in (out / "results.md").read_text()


def test_wrong_token_stops_the_job_with_the_reason(url, tmp_path):
    proc = evaluate(f"server.url={url}", f"output={tmp_path / 'denied'}", token="wrong")
    assert proc.returncode != 0
    # /health is public (as vLLM's), so the job finds the server and is refused at its first scoring request
    assert "HTTP 401" in proc.stderr and "AuthenticationError" in proc.stderr
