"""Running a job as a step (synpref.runner.steps): strict merges, the saved step config, typed errors."""

import sys

import pytest
from omegaconf import OmegaConf

from synpref.runner import steps
from synpref.runner.errors import BadConfig, StepFailed
from synpref.runner.job import exits_with_status

REPO = steps.REPO


def test_job_config_merges_step_settings_over_the_jobs_own_config():
    cfg = steps.job_config("train_rm", {"output": "/x", "train": {"epochs": 5}})
    assert cfg.output == "/x" and cfg.train.epochs == 5
    assert cfg.train.zero_stage == 2  # untouched keys keep conf/train_rm.yaml's values


def test_a_misspelt_key_in_a_step_block_names_the_key_and_the_job():
    with pytest.raises(BadConfig) as bad:
        steps.job_config("train_rm", {"train": {"epoch": 3}}, where="stage1.train_rm")
    assert bad.value.problems == ["stage1.train_rm: jobs/train_rm.py has no key 'train.epoch' "
                                  "(conf/train_rm.yaml lists its keys)"]
    assert bad.value.exit_status == 2


def test_every_step_block_of_a_parent_is_checked_before_any_step_runs():
    cfg = OmegaConf.load(REPO / "conf" / "pipeline.yaml")
    steps.check_blocks("pipeline", cfg)  # the shipped config is clean
    cfg.stage1.train_rm = {"trian": {"epochs": 1}}  # two levels down: pipeline -> stage1 -> train_rm
    cfg.final_rm.lr = 0.1
    with pytest.raises(BadConfig) as bad:
        steps.check_blocks("pipeline", cfg)
    text = str(bad.value)
    assert "stage1.train_rm: jobs/train_rm.py has no key 'trian'" in text
    assert "final_rm: jobs/train_rm.py has no key 'lr'" in text


def test_a_pipeline_command_line_typo_fails_before_anything_runs(tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, str(REPO / "jobs" / "pipeline.py"), f"output={tmp_path / 'run'}",
                           "++stage1.train_rm.train.epoch=3"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "stage1.train_rm: jobs/train_rm.py has no key 'train.epoch'" in proc.stderr
    assert not (tmp_path / "run" / "world").exists()  # nothing ran


def test_a_step_saves_its_config_in_its_output_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    command, folder, temporary = steps.write_step_config("score", {"data": {"input": "x", "output": str(out)}},
                                                         str(out))
    assert not temporary and folder == out / steps.STEP_CONFIG
    saved = OmegaConf.load(folder / "score.yaml")
    assert saved.data.input == "x" and saved.backend == "transformers"
    assert command[-4:] == ["--config-path", str(folder), "--config-name", "score"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_step_raises_with_its_exit_status_and_the_job_exits_with_it(tmp_path):
    with pytest.raises(StepFailed) as failed:
        steps.run_job("verify", {"action": "import", "data": {"exported": str(tmp_path / "none"),
                                                              "output": str(tmp_path / "gold")}},
                      output=str(tmp_path / "gold"))
    assert failed.value.exit_status == 2 and "rerun it by hand" in str(failed.value)

    @exits_with_status
    def parent(cfg):
        raise failed.value

    with pytest.raises(SystemExit) as stop:
        parent(None)
    assert stop.value.code == 2
