"""Every config in conf/ loads, passes its own job's check, and every step block names only keys its
child job has (synpref.runner.steps.check_blocks), so a shipped default can never be a typo."""

import importlib.util
from pathlib import Path

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from synpref.runner import steps

REPO = Path(__file__).resolve().parents[1]
JOBS = sorted(p.stem for p in (REPO / "jobs").glob("*.py"))
# what a user must give on the command line beside the ??? keys (each job's docstring shows it)
USER_GIVES = {
    "evaluate": {"model": "/placeholder/model"},  # or server.url: exactly one
    "score": {"models": [{"name": "rm", "path": "/placeholder/rm"}]},
    "serve_rm": {"model": "/placeholder/rm"},
    "verify": {"data": {"input": "/placeholder/pairs"}},
}


def job_module(job: str):
    spec = importlib.util.spec_from_file_location(f"job_{job}", REPO / "jobs" / f"{job}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filled(cfg: DictConfig) -> DictConfig:
    """The config with every mandatory ??? value given a placeholder, as a user's command line would."""
    def fill(node, path=""):
        items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node)
        for key, _ in list(items):
            if isinstance(node, DictConfig) and OmegaConf.is_missing(node, key):
                node[key] = f"/placeholder/{path}{key}"
            elif isinstance(node[key], (DictConfig, ListConfig)):
                fill(node[key], f"{path}{key}.")
    fill(cfg)
    return cfg


def test_every_job_has_its_config_and_every_config_its_job():
    configs = {p.stem for p in (REPO / "conf").glob("*.yaml")} - {"serve_deploy"}  # a `serve deploy` file
    assert configs == set(JOBS), (configs ^ set(JOBS))


@pytest.mark.parametrize("job", JOBS)
def test_the_shipped_config_passes_its_jobs_check(job, monkeypatch):
    monkeypatch.setenv("SYNPREF_BENCHMARKS", str(REPO / "tests" / "fixtures" / "benchmarks"))
    cfg = filled(OmegaConf.merge(OmegaConf.load(REPO / "conf" / f"{job}.yaml"), USER_GIVES.get(job, {})))
    OmegaConf.resolve(cfg)
    problems = job_module(job).check_config(cfg)
    assert problems == [], problems


@pytest.mark.parametrize("job", sorted(steps.STEP_BLOCKS))
def test_every_step_block_names_only_its_child_jobs_keys(job):
    steps.check_blocks(job, OmegaConf.load(REPO / "conf" / f"{job}.yaml"))


def test_every_config_header_gives_the_launch_line():
    for path in (REPO / "conf").glob("*.yaml"):
        head = path.read_text().splitlines()[0]
        assert head.startswith("# Job: jobs/") or path.stem == "serve_deploy", f"{path.name}: {head}"


def test_a_sampled_judge_without_its_samples_is_refused_before_anything_runs():
    cfg = filled(OmegaConf.load(REPO / "conf" / "annotate.yaml"))
    cfg.judges = [{"name": "j", "model": "smollm2-135m-instruct", "mode": "logprob"}]
    assert job_module("annotate").check_config(cfg) == []
    cfg.judges[0].mode = "sampled"  # a logprob judge switched on the command line: no samples, no temperature
    problems = job_module("annotate").check_config(cfg)
    assert any("judge j: mode sampled needs samples and temperature" in p for p in problems), problems
