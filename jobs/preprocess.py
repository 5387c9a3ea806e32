"""Pre-process raw preference data into clean pairs, as a Ray Data job (DESIGN.md section 1).

Reads:  data.input  -- JSONL / JSON / Parquet files, datasets save_to_disk folders or hub datasets
                       (hf://datasets/<org>/<name>, data.hub.config/split) in the formats of synpref.preprocess.formats
Writes: data.output/pairs/status=kept|dropped|quarantined/  (PAIR_SCHEMA, every input row accounted for)
        data.output/stats.json, config.yaml, _SUCCESS       (synpref.runner.runs)
Steps:  parse -> binarize -> require_responses -> decontaminate (13-gram) -> dedup (global, exact)

    python jobs/preprocess.py data.input=raw/ data.output=out/clean
    ray job submit --working-dir . -- python jobs/preprocess.py data.input=s3://b/raw data.output=s3://b/clean
"""

import sys
import time
from pathlib import Path

import hydra
import ray
from omegaconf import DictConfig, OmegaConf
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.preprocess.batch import STAGES, PreprocessBatch  # noqa: E402
from synpref.preprocess.decontam import NgramIndex  # noqa: E402
from synpref.preprocess.dedup import ShardedSeenKeys  # noqa: E402
from synpref.preprocess.formats import BINARIZE_STRATEGIES  # noqa: E402
from synpref.preprocess.readers import find_record_files, read_raw_records  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.record.counts import format_table, outcome_counts, summary  # noqa: E402
from synpref.record.pairs_io import write_dataset  # noqa: E402
from synpref.runner import runs  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.data.binarize not in BINARIZE_STRATEGIES:
        problems.append(f"data.binarize={cfg.data.binarize!r}: choose one of {', '.join(BINARIZE_STRATEGIES)}")
    if cfg.decontam.fields not in ("prompt", "all"):
        problems.append(f"decontam.fields={cfg.decontam.fields!r}: choose prompt or all")
    if cfg.decontam.enabled and not cfg.decontam.benchmarks:
        problems.append("decontam.enabled=true needs benchmark files: set SYNPREF_BENCHMARKS or "
                        "decontam.benchmarks=[path,...], or turn it off with decontam.enabled=false")
    if cfg.actors < 1 or cfg.dedup.shards < 1 or cfg.batch_size < 1:
        problems.append("actors, dedup.shards and batch_size must be at least 1")
    return problems


@hydra.main(config_path="../conf", config_name="preprocess", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    inputs = [storage.absolute(p) for p in storage.as_list(cfg.data.input)]
    benchmarks = [storage.absolute(p) for p in storage.as_list(cfg.decontam.benchmarks)]
    run = JobRun.start(cfg, job="preprocess", output=cfg.data.output, check=check_config,
                       extra={"input": inputs, "benchmarks": benchmarks})
    if run.done:
        return run.stats
    # hub datasets are fetched (or, offline, found in the cache) before Ray starts: a bad name fails fast
    files = find_record_files(inputs, hub=OmegaConf.to_container(cfg.data.hub))
    ray.init(address=cfg.ray.address, num_cpus=runs.local_num_cpus(cfg.ray.address, cfg.ray.num_cpus),
             log_to_driver=True)
    started = time.time()

    ngram_index = None
    if cfg.decontam.enabled:
        ngram_index = NgramIndex.from_benchmarks(benchmarks, n=cfg.decontam.ngram)
        print(f"decontamination index: {len(ngram_index)} {cfg.decontam.ngram}-grams "
              f"({ngram_index.hashes.nbytes / 1e6:.1f} MB) from {benchmarks}")
    seen_keys = ShardedSeenKeys(cfg.dedup.shards) if cfg.dedup.enabled else None

    raw = read_raw_records(files, lines_per_block=cfg.lines_per_block)
    pairs = raw.map_batches(
        PreprocessBatch,
        fn_constructor_kwargs=dict(limits=OmegaConf.to_container(cfg.data.limits), binarize=cfg.data.binarize,
                                   ngram_index=ngram_index, decontam_fields=cfg.decontam.fields,
                                   seen_keys=seen_keys),
        compute=ActorPoolStrategy(min_size=1, max_size=cfg.actors),
        batch_size=cfg.batch_size,
        batch_format="pyarrow",
        num_cpus=cfg.actor_num_cpus,
    )
    pairs_path = storage.join(run.output, "pairs")
    write_dataset(pairs, pairs_path)
    elapsed = time.time() - started

    stats = summary(outcome_counts(pairs_path), STAGES)
    stats.update(seconds=round(elapsed, 2), records_per_second=round(stats["records_in"] / max(elapsed, 1e-9), 1),
                 dedup_state=seen_keys.sizes() if seen_keys else None)
    totals = stats["totals"]
    stats["result"] = (f"{stats['records_in']} records -> {totals['kept']} pairs kept, {totals['dropped']} dropped, "
                       f"{totals['quarantined']} quarantined ({stats['records_per_second']:.0f} records/s)")
    print(format_table(stats))
    print(f"{stats['result']}; kept pairs: {pairs_path}/status=kept")
    return run.finish(stats, log=lambda w: w.log({f"{row['stage']}/{k}": row[k] for row in stats["stages"]
                                                   for k in ("in", "kept")}))


if __name__ == "__main__":
    main()
