"""Reward-model training end to end: Ray Train + DeepSpeed on 2 CPU workers, a tiny random Llama."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch

from conftest import REPO, run_job
from synpref.demo.tiny_models import build_tiny_model
from synpref.rm.format import rm_text
from synpref.demo.synthetic import colour_pairs, write_colour_pairs

pytestmark = pytest.mark.e2e
COMMON = ["train.lr=1e-3", "train.lr_schedule=constant", "train.eval_every=4", "train.max_length=128",
          "train.micro_batch_size=4", "train.global_batch_size=16", "wandb.mode=disabled"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    build_tiny_model(root / "tiny", kind="seq_cls")
    write_colour_pairs(root / "train.parquet", 384, seed=1, rule="answer")
    write_colour_pairs(root / "val.parquet", 64, seed=2, rule="answer")
    return root


def train(data, out, *overrides, timeout=900):
    proc = run_job("train_rm.py", f"model={data / 'tiny'}", f"data.train={data / 'train.parquet'}",
                   f"data.validation={data / 'val.parquet'}", f"output={out}", *COMMON, *overrides, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads((out / "stats.json").read_text()), proc


def assert_learned(stats):
    history = stats["history"]
    assert len(history) >= 4 and history[0]["step"] == 0  # step 0: the untrained model
    assert history[-1]["train_loss"] < history[1]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.1
    assert history[0]["val_accuracy"] < 0.8 and stats["best"]["val_accuracy"] >= 0.9
    assert stats["best"]["val_pairs"] == 64  # every validation pair scored once across the 2 ranks


def transformers_scores(folder, texts):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return [model(**tokenizer(t, return_tensors="pt")).logits[0, 0].item() for t in texts]


@pytest.fixture(scope="module")
def zero2(data):
    return train(data, data / "zero2", "train.zero_stage=2")


def test_zero2_learns(zero2):
    stats, proc = zero2
    assert_learned(stats)
    assert "best val_accuracy" in proc.stdout


def test_zero3_learns(data):
    stats, _ = train(data, data / "zero3", "train.zero_stage=3")
    assert_learned(stats)


def test_export_loads_in_transformers_and_vllm_with_the_trainers_scores(data, zero2):
    stats, _ = zero2
    model_dir = data / "zero2" / "model"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = colour_pairs(64, seed=2, rule="answer")
    chosen = [rm_text(tokenizer, r["conversation"], r["chosen"]) for r in rows]
    rejected = [rm_text(tokenizer, r["conversation"], r["rejected"]) for r in rows]
    hf = transformers_scores(model_dir, chosen + rejected)
    # the trainer's own validation figures for this checkpoint, recomputed from the export
    accuracy = sum(w > l for w, l in zip(hf[:64], hf[64:])) / 64
    assert accuracy == pytest.approx(stats["best"]["val_accuracy"])
    assert sum(hf) / len(hf) == pytest.approx(stats["best"]["reward_mean"], abs=1e-4)
    texts = chosen[:8] + rejected[:8]
    (data / "texts.json").write_text(json.dumps(texts))
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "vllm_scores.py"), str(model_dir),
                           str(data / "texts.json")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    vllm = json.loads(proc.stdout.split("SCORES ", 1)[1])
    assert vllm == pytest.approx(hf[:8] + hf[64:72], abs=1e-3)


def kill_a_worker_after_first_checkpoint(checkpoints: Path, killed: list):
    started = time.time()  # only this run's workers: an earlier test's may still be exiting
    deadline = started + 600
    while time.time() < deadline and not killed:
        # a checkpoint counts once the controller has registered it (its snapshot names it): a kill
        # before that restarts from scratch, which is right too, but would not test resuming
        snapshot = checkpoints / "train" / "checkpoint_manager_snapshot.json"
        if snapshot.exists() and "step-0" in snapshot.read_text():
            for proc in psutil.process_iter(["cmdline", "create_time"]):
                if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []) and proc.info["create_time"] > started:
                    proc.kill()
                    killed.append(proc.pid)
                    return
        time.sleep(0.5)


def test_killed_worker_resumes_from_the_last_checkpoint(data):
    out = data / "fault"
    write_colour_pairs(data / "train_long.parquet", 768, seed=3, rule="answer")
    killed: list = []
    watcher = threading.Thread(target=kill_a_worker_after_first_checkpoint, args=(out / "checkpoints", killed))
    watcher.start()
    proc = run_job("train_rm.py", f"model={data / 'tiny'}", f"data.train={data / 'train_long.parquet'}",
                   f"data.validation={data / 'val.parquet'}", f"output={out}", *COMMON, "train.zero_stage=2",
                   timeout=900)
    watcher.join()
    assert killed, "no training worker was found to kill"
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    logs = proc.stdout + proc.stderr
    assert "resumed from step" in logs
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 768 // 16  # finished every step of the epoch
    steps = [m["step"] for m in stats["history"]]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 48  # one record per step, continuing after the restart
