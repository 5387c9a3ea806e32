"""Run folders and completion markers (synpref.runner.runs, synpref.runner.job)."""

import json

import pytest
from omegaconf import OmegaConf

from synpref.runner import runs
from synpref.runner.errors import CountsDoNotReconcile, OutputHoldsAnotherRun
from synpref.runner.job import JobRun


def test_once_builds_once_per_fingerprint_and_clears_what_a_killed_run_left(tmp_path):
    folder = str(tmp_path / "step")
    calls = []

    def build():
        calls.append(1)
        (tmp_path / "step").mkdir(exist_ok=True)
        (tmp_path / "step" / "part.txt").write_text(str(len(calls)))
        return {"rows": 3}

    assert runs.once(folder, "a", build) == {"rows": 3} and len(calls) == 1
    assert runs.once(folder, "a", build) == {"rows": 3} and len(calls) == 1  # finished: skipped
    assert runs.once(folder, "b", build) == {"rows": 3} and len(calls) == 2  # other settings: redone
    (tmp_path / "step" / runs.SUCCESS).unlink()  # as a run killed before its marker leaves it
    (tmp_path / "step" / "stale.txt").write_text("half written")
    runs.once(folder, "b", build)
    assert len(calls) == 3 and not (tmp_path / "step" / "stale.txt").exists()


def test_a_job_run_skips_a_finished_output_and_refuses_other_settings(tmp_path, capsys):
    cfg = OmegaConf.create({"x": 1, "overwrite": False, "ray": {"num_cpus": 2}, "wandb": {"mode": "disabled"}})
    run = JobRun.start(cfg, job="t", output=str(tmp_path / "out"))
    assert not run.done and (tmp_path / "out" / "config.yaml").exists()
    run.finish({"reconcile": {"ok": True, "problems": []}, "rows": 2})
    again = JobRun.start(OmegaConf.merge(cfg, {"ray": {"num_cpus": 8}}), job="t", output=str(tmp_path / "out"))
    assert again.done and again.stats["rows"] == 2  # how a run is executed does not change what it computed
    assert "already holds this run" in capsys.readouterr().out
    with pytest.raises(OutputHoldsAnotherRun):
        JobRun.start(OmegaConf.merge(cfg, {"x": 2}), job="t", output=str(tmp_path / "out"))
    assert not JobRun.start(OmegaConf.merge(cfg, {"x": 2, "overwrite": True}), job="t",
                            output=str(tmp_path / "out")).done


def test_counts_that_do_not_reconcile_raise_after_the_stats_are_written(tmp_path):
    cfg = OmegaConf.create({"overwrite": False})
    run = JobRun.start(cfg, job="t", output=str(tmp_path / "out"))
    with pytest.raises(CountsDoNotReconcile) as bad:
        run.finish({"reconcile": {"ok": False, "problems": ["3 in but 2 out"]}})
    assert "3 in but 2 out" in str(bad.value)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["reconcile"]["ok"] is False
    assert not (tmp_path / "out" / "_SUCCESS").exists()  # not finished: a re-run does the work again
    assert not JobRun.start(cfg, job="t", output=str(tmp_path / "out")).done
