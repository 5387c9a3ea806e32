"""Stage 2: large-scale, human-free curation with the consistency filter (DESIGN.md section 3).

Reads:  data.pool   -- D_un with attributes (the pool Stage 1 drew from); D_gold and judge-labelled D_silver
                       pairs are left out (D_silver's bootstrap, the pool's own labels, is decided here)
        data.gold   -- D_gold (human-verified) from Stage 1; data.silver -- D_silver from Stage 1
        best_rm     -- Stage 1's best RM (its stats.json names it)
Steps (under output/, each skipped on a re-run once finished):
  gold_rm/      train the gold RM on D_gold                                             (jobs/train_rm.py)
  remaining/    the pool without D_gold and judge-labelled D_silver pairs (a Ray Data anti-join)
  scored/       p of the best RM and of the gold RM for every pair, one pass            (jobs/score.py)
  unconfident/  pairs with p_best < 0.5 + unconfident_margin
  judged/       those through retrieval of gold examples + the judges                   (jobs/annotate.py)
  pairs/        the curated pool: keep a pair when the gold RM agrees AND (the judges OR the best RM)
                do; judge-labelled D_silver comes along; with flip_dropped the dropped pairs come back flipped.
                The judged pairs keep their votes, label and judge score.
                status=kept|dropped|quarantined, stage=stage2, reason = the rule that decided
Writes: output/stats.json (counts per rule; in = kept + dropped + quarantined), config.yaml, _SUCCESS.

    python jobs/stage2.py data.pool=out/pool/pairs data.gold=out/stage1/iter-1/human/gold/pairs \
        data.silver=out/stage1/iter-1/silver/pairs best_rm=out/stage1/iter-1/rm/model output=out/stage2
"""

import sys
from pathlib import Path

import hydra
import pyarrow as pa
import ray
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.curation.pool_join import as_silver, judged_silver, without_gold_and_silver  # noqa: E402
from synpref.curation.stage2 import STAGE, apply_keep_rule, is_recycled, unconfident  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.record.counts import by_status_and_reason, outcome_counts  # noqa: E402
from synpref.record.pairs_io import write_dataset  # noqa: E402
from synpref.record.schema import DROPPED, KEPT, QUARANTINED  # noqa: E402
from synpref.runner import console, runs, steps  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402

BEST, GOLD = "best", "gold"


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    margins = {"unconfident_margin": cfg.unconfident_margin, "keep.gold_margin": cfg.keep.gold_margin,
               "keep.best_margin": cfg.keep.best_margin}
    problems += [f"{key}={value}: a margin on p is in [0, 0.5)" for key, value in margins.items()
                 if not 0.0 <= value < 0.5]
    return problems


def by_confidence(batch: pa.Table, *, margin: float, want_unconfident: bool) -> pa.Table:
    """The scored rows the best RM is unsure of (want_unconfident) or all the others."""
    return batch.filter(pa.array([(r["status"] == KEPT and unconfident(r, best=BEST, margin=margin)) == want_unconfident
                                  for r in batch.to_pylist()], pa.bool_()))


@hydra.main(config_path="../conf", config_name="stage2", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    steps.check_blocks("stage2", cfg)
    console.set_verbose(cfg.verbose)
    run = JobRun.start(cfg, job="stage2", output=cfg.output, check=check_config, clear_on_overwrite=True)
    if run.done:
        return run.stats
    steps.shared_cluster(cfg.ray.address, cfg.ray.num_cpus)
    output, fingerprint = run.output, run.fingerprint
    gold = storage.absolute(cfg.data.gold)
    # judge-labelled D_silver is curated already; its bootstrap (the pool's own labels) is decided here
    silver = storage.absolute(cfg.data.silver)
    n_silver = judged_silver(silver).count()

    # 1. the gold RM, trained on every human-verified pair
    gold_rm = storage.join(output, "gold_rm")
    gold_stats = steps.run_job("train_rm", steps.merged(cfg.train_rm, {
        "output": gold_rm, "data": {"train": gold, "validation": None}}), output=gold_rm, where="stage2.train_rm")

    # 2. both RMs score the rest of the pool in one pass
    remaining = storage.join(output, "remaining")

    runs.once(remaining, fingerprint, lambda: without_gold_and_silver(
        storage.absolute(cfg.data.pool), gold, silver, partition_rows=cfg.join_partition_rows).write_parquet(remaining))
    n_remaining = ray.data.read_parquet(remaining).count()
    scored = storage.join(output, "scored")
    steps.run_job("score", steps.merged(cfg.score, {
        "data": {"input": remaining, "output": scored},
        "models": [{"name": BEST, "path": storage.absolute(cfg.best_rm)},
                   {"name": GOLD, "path": storage.join(gold_rm, "model")}]}), output=scored, where="stage2.score")

    # 3. the pairs the best RM is unsure of go through retrieval + judges, and come back with their votes
    scored_pairs = ray.data.read_parquet(storage.join(scored, "pairs"))
    unsure = storage.join(output, "unconfident")
    runs.once(unsure, fingerprint, lambda: scored_pairs.map_batches(
        by_confidence, batch_format="pyarrow",
        fn_kwargs=dict(margin=cfg.unconfident_margin, want_unconfident=True)).write_parquet(unsure))
    n_unsure = ray.data.read_parquet(unsure).count()
    confident = scored_pairs.map_batches(by_confidence, batch_format="pyarrow",
                                         fn_kwargs=dict(margin=cfg.unconfident_margin, want_unconfident=False))
    judge_stats, to_decide = {}, confident
    if n_unsure:
        judged = storage.join(output, "judged")
        judge_stats = steps.run_job("annotate", steps.merged(cfg.annotate, {
            "data": {"input": unsure, "output": judged}, "examples": {"verified": gold},
            "annotator": {"reuse_existing": True},
            "judging": {"enabled": True, "calibration": {"gold": gold if cfg.judges_on_gold else None}}}),
            output=judged, where="stage2.annotate")
        to_decide = confident.union(ray.data.read_parquet(storage.join(judged, "pairs")))

    # 4. the keep rule over every scored row; D_silver joins the curated pool as it is
    pairs_path = storage.join(output, "pairs")
    keep = cfg.keep
    # batch_size=None: one block at a time, as scored and judged blocks carry different columns
    decided = to_decide.map_batches(apply_keep_rule, batch_format="pyarrow", batch_size=None, fn_kwargs=dict(
        best=BEST, gold=GOLD, gold_margin=keep.gold_margin, best_margin=keep.best_margin,
        flip_dropped=keep.flip_dropped))
    curated = decided.union(judged_silver(silver).map_batches(as_silver, batch_format="pyarrow")) if n_silver else decided
    write_dataset(curated, pairs_path)

    rules = by_status_and_reason(outcome_counts(pairs_path))
    flipped_in = sum(n for (status, reason), n in rules.items() if is_recycled({"reason": reason}))
    statuses = {s: sum(n for (status, _), n in rules.items() if status == s) for s in (KEPT, DROPPED, QUARANTINED)}
    n_in, rows_out = n_remaining + n_silver, sum(rules.values())
    stats = {"pairs_in": n_in, "pool_scored": n_remaining, "silver_in": n_silver, "unconfident": n_unsure,
             "judged": judge_stats.get("pairs_labelled", 0), "judge_labels": judge_stats.get("labels", {}),
             "rules": {f"{s}:{r}": n for (s, r), n in rules.items()}, "kept": statuses[KEPT] - flipped_in,
             "flipped_added": flipped_in, "dropped": statuses[DROPPED], "quarantined": statuses[QUARANTINED],
             "gold_rm_accuracy": gold_stats["best"]["val_accuracy"], "gold_rm": storage.join(gold_rm, "model"),
             "reconcile": {"ok": rows_out - flipped_in == n_in,
                           "problems": [] if rows_out - flipped_in == n_in else
                           [f"{n_in} pairs in but {rows_out - flipped_in} decided rows out"]}}
    stats["result"] = (f"{n_in} pairs in: kept {stats['kept']}, dropped {stats['dropped']}, quarantined "
                       f"{stats['quarantined']}; {n_unsure} judged; +{flipped_in} flipped")
    print(format_rules(stats))
    return run.finish(stats)


def format_rules(stats: dict) -> str:
    lines = [f"{'status':<12} {'rule':<30} {'pairs':>7}"]
    for name, n in sorted(stats["rules"].items()):
        status, rule = name.split(":", 1)
        lines.append(f"{status:<12} {rule:<30} {n:>7}")
    lines.append(f"{stats['pairs_in']} pairs in ({stats['pool_scored']} pool + {stats['silver_in']} silver) = "
                 f"kept {stats['kept']} + dropped {stats['dropped']} + quarantined {stats['quarantined']}; "
                 f"+{stats['flipped_added']} flipped pairs added by {STAGE}; {stats['unconfident']} unconfident "
                 "pairs judged; " + ("counts reconcile" if stats["reconcile"]["ok"] else "COUNTS DO NOT RECONCILE"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
