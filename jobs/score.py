"""Score pairs with reward models: r(chosen), r(rejected), p = sigmoid(r_chosen - r_rejected) per model
in each pair's rm_scores (DESIGN.md sections 2-3: the best RM's p for retrieval and Stage 2, the gold
RM's for the keep rule). Several models score in one pass over the data.

Reads:  data.input -- Parquet pairs (PAIR_SCHEMA): a pairs/ folder (every status) or pairs/status=kept
Writes: data.output/pairs/status=kept|quarantined|.../  every input row exactly once: kept pairs scored
        (too long: truncated and marked, or quarantined too_long, by `overflow`); rows not kept unchanged
        data.output/stats.json, config.yaml, _SUCCESS (synpref.runner.runs); a re-run of a finished output skips,
        a re-run of a killed one scores only the pairs it had not written (synpref.record.resumable)
Backends: transformers (synpref.scoring.transformers_backend.ScorePairs actors, CPU or GPU) | vllm (ray.data.llm classify)

    python jobs/score.py data.input=out/ann/pairs data.output=out/scored 'models=[{name: best, path: out/rm/model}]'
    ray job submit --working-dir . -- python jobs/score.py device=cuda actors=8 batch_size=512 \
        'models=[{name: best, path: s3://b/rm}, {name: gold, path: s3://b/gold}]' data.input=s3://... data.output=s3://...
"""

import sys
import time
from pathlib import Path

import hydra
import ray
from omegaconf import DictConfig, OmegaConf
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.record import storage  # noqa: E402
from synpref.record.counts import COUNT_COLUMNS, format_table, outcome_counts  # noqa: E402
from synpref.record.pairs_io import write_dataset  # noqa: E402
from synpref.record.resumable import write_resumable  # noqa: E402
from synpref.rm.scorer import DTYPES  # noqa: E402
from synpref.runner import runs  # noqa: E402
from synpref.runner.errors import BadConfig  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402
from synpref.scoring.figures import format_models, score_stats  # noqa: E402
from synpref.scoring.pairs import BACKENDS, OVERFLOW_POLICIES  # noqa: E402
from synpref.scoring.transformers_backend import ScorePairs  # noqa: E402
from synpref.scoring.vllm_backend import score_with_vllm  # noqa: E402

# how a run is executed, not what it computes: a finished run with other values of these is still done
EXECUTION_KEYS = ("actors", "batch_size", "transformers", "vllm", "resume_block_pairs")


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.backend not in BACKENDS:
        problems.append(f"backend={cfg.backend!r}: choose one of {', '.join(BACKENDS)}")
    if cfg.overflow not in OVERFLOW_POLICIES:
        problems.append(f"overflow={cfg.overflow!r}: choose one of {', '.join(OVERFLOW_POLICIES)}")
    if cfg.device not in ("cpu", "cuda") or cfg.dtype not in DTYPES:
        problems.append(f"device={cfg.device!r} dtype={cfg.dtype!r}: choose device cpu|cuda, dtype in {DTYPES}")
    if not cfg.models or any(not m.get("name") or not m.get("path") for m in cfg.models):
        problems.append("models: give at least one {name, path}, e.g. 'models=[{name: best, path: out/rm/model}]'")
    names = [m.get("name") for m in cfg.models or []]
    if len(set(names)) != len(names):
        problems.append(f"models: names {names} must be distinct (each is one rm_scores entry)")
    if cfg.actors < 1 or cfg.batch_size < 1 or cfg.resume_block_pairs < 1 or cfg.max_length < 2:
        problems.append("actors, batch_size and resume_block_pairs must be at least 1, max_length at least 2")
    return problems


def input_pairs(inputs: list[str], limit):
    """The input, read the same way for counting and for scoring (a limit takes the same first rows)."""
    if limit:
        ray.data.DataContext.get_current().execution_options.preserve_order = True
    pairs = ray.data.read_parquet(inputs)
    return pairs.limit(limit) if limit else pairs


def scored_dataset(cfg: DictConfig, pairs):
    models = OmegaConf.to_container(cfg.models, resolve=True)
    if cfg.backend == "vllm":
        dtype = cfg.dtype if cfg.dtype != "auto" else ("float32" if cfg.device == "cpu" else "bfloat16")
        engine = OmegaConf.create({**OmegaConf.to_container(cfg.vllm, resolve=True), "device": cfg.device,
                                   "dtype": dtype, "actors": cfg.actors, "batch_size": cfg.batch_size,
                                   "max_model_len": cfg.max_length})
        return score_with_vllm(pairs, models, engine=engine, max_length=cfg.max_length, overflow=cfg.overflow)
    t = cfg.transformers
    resources = dict(num_gpus=t.gpus_per_actor) if cfg.device == "cuda" else dict(num_cpus=t.cpus_per_actor)
    return pairs.map_batches(
        ScorePairs, batch_format="pyarrow", batch_size=cfg.batch_size,
        compute=ActorPoolStrategy(size=cfg.actors),  # model loads are slow: start them all, do not wait for a queue
        fn_constructor_kwargs=dict(models=models, max_length=cfg.max_length, overflow=cfg.overflow, device=cfg.device,
                                   dtype=cfg.dtype, max_tokens_per_forward=t.max_tokens_per_forward,
                                   max_rows_per_forward=t.max_rows_per_forward, torch_threads=t.torch_threads,
                                   share_prompt=t.share_prompt),
        **resources)


@hydra.main(config_path="../conf", config_name="score", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    inputs = [storage.absolute(p) for p in storage.as_list(cfg.data.input)]
    run = JobRun.start(cfg, job="score", output=cfg.data.output, check=check_config, execution_keys=EXECUTION_KEYS,
                       extra={"input": inputs})
    if run.done:
        return run.stats
    ray.init(address=cfg.ray.address, num_cpus=runs.local_num_cpus(cfg.ray.address, cfg.ray.num_cpus),
             log_to_driver=True)
    started = time.time()
    columns = [c for c in COUNT_COLUMNS if c in input_pairs(inputs, cfg.data.limit).columns()]
    input_counts = outcome_counts(input_pairs(inputs, cfg.data.limit).select_columns(columns)
                                  .iter_batches(batch_format="pyarrow", batch_size=65536))
    if not sum(input_counts.values()):
        raise BadConfig([f"data.input={inputs}: no pairs there"], job="score")

    pairs_path = storage.join(run.output, "pairs")
    finished_before = None
    if cfg.data.limit:  # the first rows: a resumed read would not see the same ones, so no resuming
        write_dataset(scored_dataset(cfg, input_pairs(inputs, cfg.data.limit)), pairs_path)
    else:
        finished_before = write_resumable(lambda: ray.data.read_parquet(inputs), lambda kept: scored_dataset(cfg, kept),
                                          pairs_path, output=run.output, fingerprint=run.fingerprint,
                                          rows_per_block=cfg.resume_block_pairs)
    if finished_before is not None:
        print(f"resumed an unfinished run: {finished_before} pairs it had scored were not scored again")
    elapsed = time.time() - started

    names = [m.name for m in cfg.models]
    stats = score_stats(input_counts, pairs_path, names, elapsed)
    stats.update(backend=cfg.backend, resumed_after_pairs=finished_before)
    stats["result"] = (f"{stats['pairs_scored']} pairs scored by {', '.join(names)} ({stats['pairs_per_second']} "
                       f"pairs/s), {stats['totals']['quarantined']} quarantined")
    print(format_table(stats))
    print(format_models(stats["models"]))
    print(f"{stats['pairs_scored']} pairs scored by {len(names)} model(s) in {elapsed:.1f} s "
          f"({stats['pairs_per_second']} pairs/s, {cfg.backend} on {cfg.device}); {stats['pairs_truncated']} truncated "
          f"to max_length={cfg.max_length}; {stats['passed_through']} rows not kept passed through")
    return run.finish(stats, log=lambda w: w.summary.update(
        {f"{m}/{k}": v for m, f in stats["models"].items() for k, v in f.items()}))


if __name__ == "__main__":
    main()
