"""Stage 2: large-scale, human-free curation with the consistency filter (DESIGN.md section 3).

Reads:  data.pool   -- D_un with attributes (the pool Stage 1 drew from); D_gold and D_silver pairs are left out
        data.gold   -- D_gold (human-verified) from Stage 1; data.silver -- D_silver from Stage 1
        best_rm     -- Stage 1's best RM (its stats.json names it)
Steps (under output/, each skipped on a re-run once finished):
  gold_rm/      train the gold RM on D_gold                                             (jobs/train_rm.py)
  remaining/    the pool without D_gold and D_silver pairs
  scored/       p of the best RM and of the gold RM for every pair, one pass            (jobs/score.py)
  unconfident/  pairs with p_best < 0.5 + unconfident_margin
  judged/       those through retrieval of gold examples + the judges                   (jobs/annotate.py)
  pairs/        the curated pool: keep a pair when the gold RM agrees AND (the judges OR the best RM)
                do; D_silver comes along; with flip_dropped the dropped pairs come back flipped.
                status=kept|dropped|quarantined, stage=stage2, reason = the rule that decided
Writes: output/stats.json (counts per rule; in = kept + dropped + quarantined), config.yaml, _SUCCESS.

    python jobs/stage2.py data.pool=out/pool/pairs data.gold=out/stage1/iter-1/human/gold/pairs \
        data.silver=out/stage1/iter-1/silver/pairs best_rm=out/stage1/iter-1/rm/model output=out/stage2
"""

import sys
from collections import Counter
from pathlib import Path

import hydra
import pyarrow as pa
import pyarrow.dataset as pads
import ray
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.runner import runs  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.runner import steps as subjobs  # noqa: E402
from synpref.record.pairs_io import key, keys, kept_folder, read_kept  # noqa: E402
from synpref.record.schema import KEPT, to_table  # noqa: E402
from synpref.curation.stage2 import apply_keep_rule, unconfident  # noqa: E402
from synpref.runner.tracking import init_wandb  # noqa: E402

EXECUTION_KEYS = ("overwrite", "ray", "wandb")
BEST, GOLD = "best", "gold"


def without_keys(batch: pa.Table, *, taken: set[str]) -> pa.Table:
    return batch.filter(pa.array([key(r) not in taken for r in batch.to_pylist()], pa.bool_()))


def only_unconfident(batch: pa.Table, *, margin: float) -> pa.Table:
    return batch.filter(pa.array([r["status"] == KEPT and unconfident(r, best=BEST, margin=margin)
                                  for r in batch.to_pylist()], pa.bool_()))


def finished(folder: str) -> bool:
    return storage.exists(storage.join(folder, "_DONE"))


def write_done(dataset, folder: str) -> None:
    storage.delete_dir(folder)
    dataset.write_parquet(folder)
    storage.write_text(storage.join(folder, "_DONE"), "")


def rule_counts(pairs_path: str) -> Counter:
    fs, path = storage.filesystem(pairs_path)
    table = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive").to_table(
        columns=["status", "reason"])
    return Counter(zip(table["status"].to_pylist(), table["reason"].to_pylist()))


@hydra.main(config_path="../conf", config_name="stage2", version_base=None)
def main(cfg: DictConfig) -> dict:
    output = storage.absolute(cfg.output)
    settings = OmegaConf.to_container(cfg, resolve=True)
    for name in EXECUTION_KEYS:
        settings.pop(name)
    if runs.already_done(output, settings, overwrite=cfg.overwrite):
        print(f"{output} already holds this run (see {output}/stats.json); overwrite=true redoes it")
        return storage.read_json(storage.join(output, "stats.json"))
    if cfg.overwrite:  # every step's output is under output/: redo them all
        storage.delete_dir(output)
    runs.start(output, OmegaConf.to_yaml(cfg, resolve=True))
    subjobs.shared_cluster(cfg.ray.address, cfg.ray.num_cpus)
    gold, silver = storage.absolute(cfg.data.gold), storage.absolute(cfg.data.silver)
    gold_rows, silver_rows = read_kept(gold), read_kept(silver)

    # 1. the gold RM, trained on every human-verified pair
    gold_rm = storage.join(output, "gold_rm")
    gold_stats = subjobs.run_job("train_rm", subjobs.merged(cfg.train_rm, {
        "output": gold_rm, "data": {"train": gold, "validation": None}}), output=gold_rm)

    # 2. both RMs score the rest of the pool in one pass
    remaining = storage.join(output, "remaining")
    if not finished(remaining):
        # gold + silver keys: small next to the pool, so they travel with the map function
        taken = keys(gold_rows) | keys(silver_rows)
        write_done(ray.data.read_parquet(kept_folder(storage.absolute(cfg.data.pool))).map_batches(
            without_keys, batch_format="pyarrow", fn_kwargs=dict(taken=taken)), remaining)
    n_remaining = ray.data.read_parquet(remaining).count()
    scored = storage.join(output, "scored")
    subjobs.run_job("score", subjobs.merged(cfg.score, {
        "data": {"input": remaining, "output": scored},
        "models": [{"name": BEST, "path": storage.absolute(cfg.best_rm)},
                   {"name": GOLD, "path": storage.join(gold_rm, "model")}]}), output=scored)

    # 3. the pairs the best RM is unsure of go through retrieval + judges
    unsure = storage.join(output, "unconfident")
    if not finished(unsure):
        write_done(ray.data.read_parquet(storage.join(scored, "pairs")).map_batches(
            only_unconfident, batch_format="pyarrow", fn_kwargs=dict(margin=cfg.unconfident_margin)), unsure)
    n_unsure = ray.data.read_parquet(unsure).count()
    judge_labels, judge_stats = {}, {}
    if n_unsure:
        judged = storage.join(output, "judged")
        judge_stats = subjobs.run_job("annotate", subjobs.merged(cfg.annotate, {
            "data": {"input": unsure, "output": judged}, "examples": {"verified": gold},
            "judging": {"enabled": True}, "annotator": {"reuse_existing": True}}), output=judged)
        judge_labels = {r["pair_id"]: r["judge_label"]
                        for r in read_kept(storage.join(judged, "pairs"), columns=["pair_id", "judge_label"])}

    # 4. the keep rule over every scored row; D_silver joins the curated pool as it is
    pairs_path = storage.join(output, "pairs")
    storage.delete_dir(pairs_path)  # a killed run's partial output is redone whole
    keep = cfg.keep
    decided = ray.data.read_parquet(storage.join(scored, "pairs")).map_batches(
        apply_keep_rule, batch_format="pyarrow",
        fn_kwargs=dict(judge_labels=judge_labels, best=BEST, gold=GOLD, gold_margin=keep.gold_margin,
                       best_margin=keep.best_margin, flip_dropped=keep.flip_dropped))
    silver_kept = [dict(r, stage="stage2", reason="stage1_silver") for r in silver_rows]
    curated = decided.union(ray.data.from_arrow(to_table(silver_kept))) if silver_kept else decided
    curated.write_parquet(pairs_path, partition_cols=["status"])

    counts = rule_counts(pairs_path)
    flipped_in = sum(n for (status, reason), n in counts.items() if (reason or "").startswith("flipped:"))
    n_in = n_remaining + len(silver_rows)
    rows_out = sum(counts.values())
    by_status = Counter()
    for (status, _), n in counts.items():
        by_status[status] += n
    stats = {"job": "stage2", "output": output, "pairs_in": n_in, "pool_scored": n_remaining,
             "silver_in": len(silver_rows), "unconfident": n_unsure, "judged": judge_stats.get("pairs_labelled", 0),
             "judge_labels": judge_stats.get("labels", {}), "rules": {f"{s}:{r}": n for (s, r), n in counts.items()},
             "kept": by_status[KEPT] - flipped_in, "flipped_added": flipped_in,
             "dropped": by_status["dropped"], "quarantined": by_status["quarantined"],
             "gold_rm_accuracy": gold_stats["best"]["val_accuracy"], "gold_rm": storage.join(gold_rm, "model"),
             "reconcile": {"ok": rows_out - flipped_in == n_in,
                           "problems": [] if rows_out - flipped_in == n_in else
                           [f"{n_in} pairs in but {rows_out - flipped_in} decided rows out"]}}
    print(format_rules(stats))
    run = init_wandb(cfg.wandb, job="stage2", run_dir=output, config=settings)
    if run:
        run.summary.update({k: v for k, v in stats.items() if isinstance(v, (int, float))})
        run.finish()
    runs.finish_reconciled(output, settings, stats)
    return stats


def format_rules(stats: dict) -> str:
    lines = [f"{'status':<12} {'rule':<30} {'pairs':>7}"]
    for name, n in sorted(stats["rules"].items()):
        status, rule = name.split(":", 1)
        lines.append(f"{status:<12} {rule:<30} {n:>7}")
    lines.append(f"{stats['pairs_in']} pairs in ({stats['pool_scored']} pool + {stats['silver_in']} silver) = "
                 f"kept {stats['kept']} + dropped {stats['dropped']} + quarantined {stats['quarantined']}; "
                 f"+{stats['flipped_added']} flipped pairs added; {stats['unconfident']} unconfident pairs judged; "
                 + ("counts reconcile" if stats["reconcile"]["ok"] else "COUNTS DO NOT RECONCILE"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
