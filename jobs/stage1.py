"""Stage 1: small-scale, human-guided, iterative curation (DESIGN.md section 2; the paper ran 8 iterations).

Reads:  data.pool   -- D_un: pairs with their five attributes (jobs/annotate.py judging.enabled=false)
        data.gold   -- D_gold: human-verified pairs (jobs/verify.py import), validation only
        data.silver -- D_silver to start from; null = seed_silver pairs of the pool with their own labels
Each iteration i (under output/iter-<i>/):
  rm/            train a Bradley-Terry RM on D_silver, best checkpoint by accuracy on D_gold  (jobs/train_rm.py)
  gold_scored/   p = sigmoid(r_w - r_l) of every gold pair                                   (jobs/score.py)
  retrieved/     per gold pair the k nearest unverified pairs of the pool, k = k_max if p <= 0.5
                 else ceil(k_max (1 - p)), by embeddings of (conversation, attributes)
  labelled/      the judges label them, shown the nearest gold pairs as examples             (jobs/annotate.py)
  human/         a person verifies some of them (worksheet, Label Studio, Argilla) and the
                 verdicts join D_gold                                                        (jobs/verify.py)
  silver/        D_silver + the judge-labelled pairs (in the judges' order; ties left out)
Writes: output/metrics.jsonl (one row per iteration), gold_accuracy.png, stats.json (the best RM, the
        final D_gold and D_silver), config.yaml, _SUCCESS. Every step is skipped on a re-run when its
        output is finished, so a killed job resumes where it stopped. With no verdicts yet the job stops
        (exit 3) and says where they go; re-run it when they are there.

    python jobs/stage1.py data.pool=out/pool/pairs data.gold=out/gold/pairs output=out/stage1
    ray job submit --working-dir . -- python jobs/stage1.py iterations=8 train_rm.device=cuda ...
"""

import json
import sys
from pathlib import Path

import hydra
import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads
import ray
from omegaconf import DictConfig, OmegaConf
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.runner import runs  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.runner import steps as subjobs  # noqa: E402
from synpref.record.pairs_io import key, keys, kept_folder, read_kept, write_set  # noqa: E402
from synpref.record.schema import KEPT  # noqa: E402
from synpref.annotation.retrieval import EmbedPairs, Embedder, embedding_text  # noqa: E402
from synpref.curation.stage1 import best_iteration, p_of, retrieve_neighbours, silver_additions, unverified_mask  # noqa: E402
from synpref.runner.tracking import init_wandb  # noqa: E402
from synpref.verification.verification import verdicts_or_exit  # noqa: E402

EXECUTION_KEYS = ("overwrite", "ray", "wandb")


def embed_pool(cfg: DictConfig, folder: str) -> tuple[list[str], list[str], np.ndarray]:
    """(pair_ids, keys, unit vectors) of the pool, embedded once through Ray Data and kept in `folder`."""
    if not storage.exists(storage.join(folder, "_DONE")):
        storage.delete_dir(folder)
        e = cfg.embeddings
        ray.data.read_parquet(kept_folder(storage.absolute(cfg.data.pool))).map_batches(
            EmbedPairs, batch_format="pyarrow", batch_size=256, num_cpus=e.num_cpus,
            compute=ActorPoolStrategy(min_size=1, max_size=e.actors),
            fn_constructor_kwargs=dict(embedder=e.model, device=e.device)).write_parquet(folder)
        storage.write_text(storage.join(folder, "_DONE"), "")
    fs, local = storage.filesystem(folder)
    table = pads.dataset(local, filesystem=fs, format="parquet").to_table()
    vectors = np.stack(table["vector"].to_numpy(zero_copy_only=False)).astype(np.float32)
    return table["pair_id"].to_pylist(), table["key"].to_pylist(), vectors


def pool_rows(pool: str, ids: list[str]) -> list[dict]:
    fs, local = storage.filesystem(storage.absolute(kept_folder(pool)))
    dataset = pads.dataset(local, filesystem=fs, format="parquet", partitioning="hive")
    rows = dataset.to_table(filter=pc.field("pair_id").isin(ids)).to_pylist()
    for row in rows:
        row["status"] = KEPT
    order = {pid: i for i, pid in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r["pair_id"]])


def seed_silver(cfg: DictConfig, pool_ids: list[str], pool_keys: list[str], gold_keys: set[str], path: str) -> str:
    """D_silver's start: seed_silver pool pairs (by pair_id hash, none in D_gold) with their own labels."""
    if not storage.exists(storage.join(path, "_DONE")):
        ranked = sorted((pid for pid, k in zip(pool_ids, pool_keys) if k not in gold_keys),
                        key=lambda pid: runs.config_fingerprint({"seed": cfg.seed, "pair": pid}))
        rows = pool_rows(cfg.data.pool, ranked[:cfg.seed_silver])
        for row in rows:
            row.update(is_silver=True, stage="stage1", reason=None)
            row["history"] = list(row.get("history") or []) + [
                {"stage": "stage1", "status": "silver", "reason": "seed: the pool's own label"}]
        write_set(rows, storage.join(path, "pairs"))
        storage.write_text(storage.join(path, "_DONE"), "")
    return storage.join(path, "pairs")


def human_verdicts(cfg: DictConfig, it: str, labelled: str, gold: str, iteration: int) -> tuple[str, dict]:
    """Export labelled pairs for humans, wait for (or simulate) their verdicts, merge them into D_gold."""
    export = storage.join(it, "human", "export")
    subjobs.run_job("verify", subjobs.merged(cfg.verify, {
        "action": "export", "data": {"input": labelled, "output": export}, "export": {"n": cfg.human.per_iteration}}),
        output=export)
    verdicts = storage.join(it, "human", "verdicts")
    verdicts_or_exit(export, verdicts, waiting=f"Stage 1 iteration {iteration}", simulate_truth=cfg.human.simulate,
                     error_rate=cfg.human.error_rate, undecidable_rate=cfg.human.undecidable_rate,
                     seed=cfg.seed + iteration)
    merged = storage.join(it, "human", "gold")
    stats = subjobs.run_job("verify", subjobs.merged(cfg.verify, {
        "action": "import", "data": {"exported": export, "output": merged}, "verdicts": verdicts,
        "gold": {"existing": gold}}), output=merged)
    return storage.join(merged, "pairs"), stats


def plot_gold_accuracy(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["iteration"] for r in rows], [r["gold_accuracy"] for r in rows], marker="o")
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy on D_gold")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title("Stage 1: gold accuracy of each iteration's RM")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@hydra.main(config_path="../conf", config_name="stage1", version_base=None)
def main(cfg: DictConfig) -> dict:
    if cfg.iterations < 1 or cfg.k_max < 1:
        sys.exit("iterations and k_max must be at least 1")
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

    pool_ids, pool_keys, pool_vectors = embed_pool(cfg, storage.join(output, "pool_embeddings"))
    gold = storage.absolute(cfg.data.gold)
    silver = (storage.absolute(cfg.data.silver) if cfg.data.silver else
              seed_silver(cfg, pool_ids, pool_keys, keys(read_kept(gold)), storage.join(output, "silver-seed")))
    embedder = Embedder(cfg.embeddings.model, cfg.embeddings.device)
    metrics = []
    for i in range(cfg.iterations):
        it = storage.join(output, f"iter-{i}")
        row_path = storage.join(it, "metrics.json")
        if storage.exists(row_path):  # a finished iteration of a killed run
            metrics.append(storage.read_json(row_path))
            gold, silver = metrics[-1]["gold_after"], metrics[-1]["silver_after"]
            continue
        gold_rows, silver_rows = read_kept(gold), read_kept(silver)
        print(f"\n##### Stage 1 iteration {i}: D_silver {len(silver_rows)} pairs, D_gold {len(gold_rows)} pairs", flush=True)

        # 1. train on D_silver, pick the checkpoint by D_gold accuracy, and score D_gold with it
        rm = storage.join(it, "rm")
        rm_stats = subjobs.run_job("train_rm", subjobs.merged(cfg.train_rm, {
            "output": rm, "data": {"train": silver, "validation": gold}}), output=rm)
        scored = storage.join(it, "gold_scored")
        subjobs.run_job("score", subjobs.merged(cfg.score, {
            "data": {"input": gold, "output": scored}, "models": [{"name": "rm", "path": storage.join(rm, "model")}]}),
            output=scored)
        scored_rows = read_kept(storage.join(scored, "pairs"))
        p_by_key = {key(r): p_of(r, "rm") for r in scored_rows if p_of(r, "rm") is not None}

        # 2. error-driven adaptive retrieval from the unverified pool
        retrieved = storage.join(it, "retrieved")
        if not storage.exists(storage.join(retrieved, "_DONE")):
            taken = keys(gold_rows) | keys(silver_rows)
            gold_vectors = embedder([embedding_text(g) for g in gold_rows])
            positions, figures = retrieve_neighbours(
                gold_rows, gold_vectors, p_by_key, pool_vectors, unverified_mask(pool_keys, taken),
                k_max=cfg.k_max, index=cfg.embeddings.index, budget=cfg.max_labelled_per_iteration)
            write_set(pool_rows(cfg.data.pool, [pool_ids[j] for j in positions]), storage.join(retrieved, "pairs"))
            storage.write_json(storage.join(retrieved, "figures.json"), figures)
            storage.write_text(storage.join(retrieved, "_DONE"), "")
        figures = storage.read_json(storage.join(retrieved, "figures.json"))
        print(f"retrieval: {figures['gold_wrong']} of {figures['gold_pairs']} gold pairs wrong; "
              f"{figures['k_requested']} neighbours asked, {figures['retrieved']} distinct unverified pairs "
              f"(of {figures['candidates']})", flush=True)
        row = {"iteration": i, "silver_pairs": len(silver_rows), "gold_pairs": len(gold_rows),
               "gold_accuracy": rm_stats["best"]["val_accuracy"], "rm": storage.join(rm, "model"), **figures}
        if not figures["retrieved"]:
            print("the unverified pool is exhausted: Stage 1 stops here")
            row.update(pairs_added=0, gold_after=gold, silver_after=silver)
            metrics.append(row)
            storage.write_json(row_path, row)
            break

        # 3. the judges label them, with the nearest gold pairs as examples
        labelled = storage.join(it, "labelled")
        ann = subjobs.run_job("annotate", subjobs.merged(cfg.annotate, {
            "data": {"input": storage.join(retrieved, "pairs"), "output": labelled},
            "examples": {"verified": gold}, "judging": {"enabled": True}, "annotator": {"reuse_existing": True}}),
            output=labelled)

        # 4. humans verify some of them; their verdicts join D_gold
        new_gold, verify_stats = human_verdicts(cfg, it, storage.join(labelled, "pairs"), gold, i)

        # 5. the rest join D_silver in the judges' order
        next_silver = storage.join(it, "silver")
        if not storage.exists(storage.join(next_silver, "_DONE")):
            in_gold = keys(read_kept(new_gold))
            added, label_counts = silver_additions(
                [r for r in read_kept(storage.join(labelled, "pairs")) if key(r) not in in_gold], iteration=i)
            write_set(silver_rows + added, storage.join(next_silver, "pairs"))
            storage.write_json(storage.join(next_silver, "figures.json"), label_counts)
            storage.write_text(storage.join(next_silver, "_DONE"), "")
        label_counts = storage.read_json(storage.join(next_silver, "figures.json"))
        row.update(judge_labelled=ann.get("pairs_labelled"), judge_labels=label_counts,
                   pairs_added=label_counts["chosen"] + label_counts["rejected"],
                   judge_agreement=ann.get("mean_judge_agreement"), position_bias_rate=ann.get("position_bias_rate"),
                   judge_quarantined=ann["totals"]["quarantined"], human=_human_figures(verify_stats),
                   gold_after=new_gold, silver_after=storage.join(next_silver, "pairs"))
        metrics.append(row)
        storage.write_json(row_path, row)
        gold, silver = new_gold, row["silver_after"]

    storage.write_text(storage.join(output, "metrics.jsonl"), "".join(json.dumps(m) + "\n" for m in metrics))
    if not storage.is_uri(output):
        plot_gold_accuracy(metrics, storage.join(output, "gold_accuracy.png"))
    best = best_iteration(metrics)
    stats = {"job": "stage1", "iterations": len(metrics), "metrics": metrics, "best_iteration": best["iteration"],
             "best_rm": best["rm"], "best_gold_accuracy": best["gold_accuracy"], "gold": gold, "silver": silver,
             "gold_pairs": len(read_kept(gold)), "silver_pairs": len(read_kept(silver))}
    print(format_metrics(metrics))
    print(f"best RM: iteration {best['iteration']} (gold accuracy {best['gold_accuracy']:.3f}) {best['rm']}\n"
          f"D_gold {stats['gold_pairs']} pairs: {gold}\nD_silver {stats['silver_pairs']} pairs: {silver}")
    run = init_wandb(cfg.wandb, job="stage1", run_dir=output, config=settings)
    if run:
        for m in metrics:
            run.log({k: v for k, v in m.items() if isinstance(v, (int, float))}, step=m["iteration"])
        run.finish()
    runs.finish(output, settings, stats)
    return stats


def _human_figures(stats: dict) -> dict:
    wanted = ("pairs_verified", "chosen", "flipped", "undecidable", "human_vs_judge_agreement", "original_label_correct")
    return {k: stats.get(k) for k in wanted if k in stats}


def format_metrics(metrics: list[dict]) -> str:
    lines = [f"{'iter':>4} {'silver':>7} {'gold':>5} {'gold_acc':>8} {'wrong':>5} {'retrieved':>9} {'added':>6} "
             f"{'judge_agr':>9} {'pos_bias':>8}"]
    for m in metrics:
        agreement = f"{m['judge_agreement']:.3f}" if m.get("judge_agreement") is not None else "-"
        bias = f"{m['position_bias_rate']:.3f}" if m.get("position_bias_rate") is not None else "-"
        lines.append(f"{m['iteration']:>4} {m['silver_pairs']:>7} {m['gold_pairs']:>5} {m['gold_accuracy']:>8.3f} "
                     f"{m['gold_wrong']:>5} {m['retrieved']:>9} {m.get('pairs_added', 0):>6} {agreement:>9} {bias:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
