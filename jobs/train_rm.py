"""Train a Bradley-Terry reward model on Ray Train + DeepSpeed ZeRO (DESIGN.md section 4).

Reads:  data.train (Parquet pairs in synpref's schema), data.validation (D_gold) or a hash split
Writes: output/model/           the best checkpoint by validation accuracy, as a Hugging Face folder
        output/checkpoints/     Ray Train checkpoints (DeepSpeed states + HF export + trainer state)
        output/stats.json, config.yaml, _SUCCESS
Resumes: worker failures restart from the last checkpoint (train.max_failures); re-running the same
command after the driver died continues from the newest checkpoint; resume_from=<checkpoint folder>
starts from a finished run's checkpoint.

    python jobs/train_rm.py data.train=out/clean/pairs/status=kept output=out/rm
    ray job submit --working-dir . -- python jobs/train_rm.py device=cuda workers=16 train.precision=bf16 ...
"""

import json
import sys
from pathlib import Path

import hydra
import pyarrow.fs as pafs
import ray
from omegaconf import DictConfig, OmegaConf
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.record import storage  # noqa: E402
from synpref.record.pairs_io import kept_path  # noqa: E402
from synpref.rm.weights import resolve_model  # noqa: E402
from synpref.runner import runs  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402
from synpref.training.batches import OVERFLOW_POLICIES  # noqa: E402
from synpref.training.ds_config import SCHEDULES, gradient_accumulation  # noqa: E402
from synpref.training.worker import PAIR_COLUMNS, STATE_FILE, train_func  # noqa: E402


def check_config(cfg: DictConfig) -> list[str]:
    t = cfg.train
    problems = []
    if t.zero_stage not in (1, 2, 3):
        problems.append(f"train.zero_stage={t.zero_stage}: use 1, 2 or 3")
    if t.offload_params and t.zero_stage != 3:
        problems.append("train.offload_params=true needs train.zero_stage=3")
    if t.precision not in ("fp32", "bf16", "fp16"):
        problems.append(f"train.precision={t.precision!r}: use fp32, bf16 or fp16")
    if t.lr_schedule not in SCHEDULES:
        problems.append(f"train.lr_schedule={t.lr_schedule!r}: use one of {', '.join(SCHEDULES)}")
    if t.overflow not in OVERFLOW_POLICIES:
        problems.append(f"train.overflow={t.overflow!r}: use truncate or drop")
    if cfg.device not in ("cpu", "cuda"):
        problems.append(f"device={cfg.device!r}: use cpu or cuda")
    try:
        gradient_accumulation(OmegaConf.to_container(t), cfg.workers)
    except ValueError as err:
        problems.append(str(err))
    return problems


def split_by_hash(row_pair_id: str, fraction: float) -> bool:
    return int(row_pair_id[:8], 16) / 0xFFFFFFFF < fraction


def newest_checkpoint(folder: str) -> str | None:
    fs, path = storage.filesystem(folder)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return None
    steps = sorted(info.path for info in fs.get_file_info(pafs.FileSelector(path, recursive=False))
                   if info.base_name.startswith("step-") and fs.get_file_info(f"{info.path}/{STATE_FILE}").size)
    return steps[-1] if steps else None


@hydra.main(config_path="../conf", config_name="train_rm", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    run = JobRun.start(cfg, job="train_rm", output=cfg.output, check=check_config)
    if run.done:
        return run.stats
    output = run.output

    env_vars = {"OMP_NUM_THREADS": str(cfg.cpus_per_worker), "TOKENIZERS_PARALLELISM": "false"}
    if cfg.device == "cpu":
        env_vars["DS_ACCELERATOR"] = "cpu"
    num_cpus = runs.local_num_cpus(cfg.ray.address, cfg.ray.num_cpus)
    if num_cpus is None and not runs.joins_cluster(cfg.ray.address) and not ray.is_initialized():
        # a local cluster: the training workers hold their CPUs for the whole run, so leave two
        # logical CPUs for the Ray Data tasks that feed them (else the read waits forever)
        num_cpus = cfg.workers * cfg.cpus_per_worker + 2
    ray.init(address=cfg.ray.address, num_cpus=num_cpus, runtime_env={"env_vars": env_vars})

    columns = PAIR_COLUMNS + ["pair_id"]
    train_ds = ray.data.read_parquet(kept_path(storage.absolute(cfg.data.train))).select_columns(columns)
    if cfg.data.validation:
        val_ds = ray.data.read_parquet(kept_path(storage.absolute(cfg.data.validation))).select_columns(columns)
    else:
        fraction = cfg.data.validation_fraction
        val_ds = train_ds.filter(lambda row: split_by_hash(row["pair_id"], fraction))
        train_ds = train_ds.filter(lambda row: not split_by_hash(row["pair_id"], fraction))
    # D_gold is small: it travels with the config and each rank scores rows[rank::world], so
    # every validation pair counts exactly once (a streaming split with equal=True would drop some)
    validation_rows = val_ds.select_columns(PAIR_COLUMNS).take_all()
    n_train = train_ds.count()
    steps_per_epoch = max(1, n_train // cfg.train.global_batch_size)
    print(f"{n_train} training pairs, {len(validation_rows)} validation pairs, {steps_per_epoch} steps/epoch x {cfg.train.epochs} epochs, "
          f"{cfg.workers} workers x micro-batch {cfg.train.micro_batch_size} x accumulation "
          f"{gradient_accumulation(OmegaConf.to_container(cfg.train), cfg.workers)} = {cfg.train.global_batch_size} pairs/step")

    checkpoints = storage.join(output, "checkpoints")
    resume = newest_checkpoint(storage.join(checkpoints, "train")) or (
        storage.absolute(cfg.resume_from) if cfg.resume_from else None)
    if resume:
        print(f"starting from checkpoint {resume}")
    # resolve once here so a built-in conversion or a hub download is done before workers start
    # (workers resolve again from the shared cache; on multi-node clusters each node fetches its own)
    resolve_model(cfg.model)
    trainer = TorchTrainer(
        train_func,
        train_loop_config={"model": cfg.model, "device": cfg.device, "output": output,
                           "steps_per_epoch": steps_per_epoch, "train": OmegaConf.to_container(cfg.train),
                           "wandb": OmegaConf.to_container(cfg.wandb), "validation_rows": validation_rows},
        scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=cfg.device == "cuda",
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(
            name="train", storage_path=checkpoints,
            failure_config=FailureConfig(max_failures=cfg.train.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.train.keep_checkpoints,
                                               checkpoint_score_attribute="val_accuracy",
                                               checkpoint_score_order="max"),
            worker_runtime_env={"env_vars": env_vars}),
        datasets={"train": train_ds},
        resume_from_checkpoint=Checkpoint(resume) if resume else None,
    )
    result = trainer.fit()

    best_checkpoint, best_metrics = max(result.best_checkpoints, key=lambda cm: cm[1]["val_accuracy"])
    model_dir = storage.join(output, "model")
    storage.delete_dir(model_dir)
    fs, model_path = storage.filesystem(model_dir)
    fs.create_dir(model_path, recursive=True)
    pafs.copy_files(storage.join(best_checkpoint.path, "hf"), model_path,
                    source_filesystem=best_checkpoint.filesystem, destination_filesystem=fs)
    state = json.loads(storage.read_text(storage.join(result.checkpoint.path, STATE_FILE)))
    stats = {"train_pairs": n_train, "steps": state["step"], "best": best_metrics,
             "best_checkpoint": best_checkpoint.path, "overflow": state["overflow"], "history": state["history"],
             "model": model_dir}
    print(f"{'step':>6} {'train_loss':>10} {'val_acc':>8} {'val_loss':>9} {'tokens/s':>9} {'padding':>8} {'shared':>7}")
    for m in state["history"]:
        loss = f"{m['train_loss']:>10.4f}" if m["train_loss"] is not None else f"{'-':>10}"
        print(f"{m['step']:>6} {loss} {m['val_accuracy']:>8.3f} {m.get('val_loss', 0):>9.4f} "
              f"{m.get('tokens_per_s', 0):>9.0f} {m.get('padding_fraction', 0):>8.3f} {m.get('shared_fraction', 0):>7.3f}")
    print(f"best val_accuracy {best_metrics['val_accuracy']:.3f} at step {best_metrics['step']}; "
          f"pairs truncated {state['overflow']['truncated']}, dropped as too long {state['overflow']['dropped']}; "
          f"model: {model_dir}")
    stats["result"] = (f"{n_train} pairs, {state['step']} steps; best validation accuracy "
                       f"{best_metrics['val_accuracy']:.3f} (step {best_metrics['step']})")
    return run.finish(stats, track=False)  # the rank-0 worker keeps the wandb run


if __name__ == "__main__":
    main()
