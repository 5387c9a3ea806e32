"""Stage 1: small-scale, human-guided, iterative curation (DESIGN.md section 2; the paper ran 8 iterations).

Reads:  data.pool   -- D_un: pairs with their five attributes (jobs/annotate.py judging.enabled=false)
        data.gold   -- D_gold: human-verified pairs (jobs/verify.py import), validation only
        data.silver -- D_silver to start from; null = seed_silver pairs of the pool with their own labels
Each iteration i (under output/iter-<i>/):
  rm/            train a Bradley-Terry RM on D_silver, best checkpoint by accuracy on D_gold  (jobs/train_rm.py)
  gold_scored/   p = sigmoid(r_w - r_l) of every gold pair                                   (jobs/score.py)
  retrieved/     per gold pair the k nearest unverified pairs of the pool, k = k_max if p <= 0.5
                 else ceil(k_max (1 - p)), by embeddings of (conversation, attributes); the pool's
                 embeddings (output/pool_embeddings, made once) stream past the gold vectors, exact by
                 default, or through an inverted file (search.kind=ivf, output/pool_cells)
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
import pyarrow.compute as pc
import ray
from omegaconf import DictConfig
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.annotation.retrieval import EmbedPairs, Embedder, embedding_text  # noqa: E402
from synpref.curation.pool_ivf import load_centroids, nearest_in_cells, save_centroids, train_centroids, write_cells  # noqa: E402
from synpref.curation.pool_search import BLOCK_ROWS, nearest_in_pool  # noqa: E402
from synpref.curation.stage1 import (best_iteration, grown_silver, is_verified_silver, retrieve_neighbours,  # noqa: E402
                                     seed_ranked, seed_silver_rows, silver_additions)
from synpref.record import storage  # noqa: E402
from synpref.record.ops import p_of, pair_key  # noqa: E402
from synpref.record.pairs_io import kept_path, read_pairs, write_pairs  # noqa: E402
from synpref.runner import console, runs, steps  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402
from synpref.verification.waiting import ensure_verdicts  # noqa: E402


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.iterations < 1 or cfg.k_max < 1:
        problems.append(f"iterations={cfg.iterations}, k_max={cfg.k_max}: both must be at least 1")
    if cfg.search.kind not in ("exact", "ivf"):
        problems.append(f"search.kind={cfg.search.kind!r}: exact or ivf")
    elif cfg.search.kind == "ivf" and min(cfg.search.ivf.cells, cfg.search.ivf.probes, cfg.search.ivf.sample) < 1:
        problems.append("search.ivf: cells, probes and sample must be at least 1")
    return problems


def embed_pool(cfg: DictConfig, output: str, fingerprint: str) -> str:
    """The pool's {pair_id, key, vector} rows, embedded once through Ray Data into output/pool_embeddings;
    with search.kind=ivf also split into cells once (output/pool_cells). Returns the folder to search."""
    e, folder = cfg.embeddings, storage.join(output, "pool_embeddings")
    runs.once(folder, fingerprint, lambda: ray.data.read_parquet(kept_path(storage.absolute(cfg.data.pool))).map_batches(
        EmbedPairs, batch_format="pyarrow", batch_size=256, num_cpus=e.num_cpus,
        compute=ActorPoolStrategy(min_size=1, max_size=e.actors),
        fn_constructor_kwargs=dict(embedder=e.model, device=e.device)).write_parquet(folder))
    if cfg.search.kind == "exact":
        return folder
    cells = storage.join(output, "pool_cells")

    def split():
        ivf = cfg.search.ivf
        centroids = train_centroids(ray.data.read_parquet(folder), cells=ivf.cells, sample_rows=ivf.sample, seed=cfg.seed)
        write_cells(ray.data.read_parquet(folder), centroids, storage.join(cells, "pairs"))
        save_centroids(storage.join(cells, "centroids.parquet"), centroids)
        return {"cells": len(centroids)}

    runs.once(cells, fingerprint, split)
    return cells


def pool_search(cfg: DictConfig, searched: str, queries, taken: set[str]):
    """search(k) -> (ids per query, candidates) for retrieve_neighbours: exact over the embeddings, or
    over the cells each query probes."""
    taken = frozenset(taken)
    centroids = load_centroids(storage.join(searched, "centroids.parquet")) if cfg.search.kind == "ivf" else None

    def search(k: int):
        if centroids is None:
            found, _, candidates = nearest_in_pool(ray.data.read_parquet(searched), queries, k, taken=taken)
        else:
            found, _, candidates = nearest_in_cells(storage.join(searched, "pairs"), centroids, queries, k,
                                                    probes=cfg.search.ivf.probes, taken=taken)
        return found, candidates

    return search


def pool_rows(pool: str, ids: list[str]) -> list[dict]:
    """The kept pool rows with these pair_ids, in the order given."""
    order = {pid: i for i, pid in enumerate(ids)}
    return sorted(read_pairs(pool, filter=pc.field("pair_id").isin(ids)), key=lambda r: order[r["pair_id"]])


def seed_silver(cfg: DictConfig, embeddings: str, gold_keys: set[str], path: str, fingerprint: str) -> str:
    """D_silver's start: seed_silver pool pairs (by pair_id hash, none in D_gold) with their own labels.
    Each block offers its first seed_silver pairs; the driver keeps the first seed_silver of those."""
    def write():
        n = cfg.seed_silver
        offered = ray.data.read_parquet(embeddings).select_columns(["pair_id", "key"]).map_batches(
            seed_ranked, batch_format="pyarrow", batch_size=BLOCK_ROWS,
            fn_kwargs=dict(seed=cfg.seed, n=n, excluded=frozenset(gold_keys)))
        first: list[tuple[str, str]] = []
        for batch in offered.iter_batches(batch_format="pyarrow", batch_size=None):
            first = sorted(first + list(zip(batch["rank"].to_pylist(), batch["pair_id"].to_pylist())))[:n]
        write_pairs(seed_silver_rows(pool_rows(cfg.data.pool, [pid for _, pid in first])), storage.join(path, "pairs"))

    runs.once(path, fingerprint, write)
    return storage.join(path, "pairs")


def human_verdicts(cfg: DictConfig, it: str, labelled: str, gold: str, iteration: int) -> tuple[str, dict]:
    """Export labelled pairs for humans, wait for (or simulate) their verdicts, merge them into D_gold."""
    export = storage.join(it, "human", "export")
    steps.run_job("verify", steps.merged(cfg.verify, {
        "action": "export", "data": {"input": labelled, "output": export}, "export": {"n": cfg.human.per_iteration}}),
        output=export, where="stage1.verify")
    verdicts = storage.join(it, "human", "verdicts")
    ensure_verdicts(export, verdicts, waiting=f"Stage 1 iteration {iteration}", simulate_truth=cfg.human.simulate,
                    error_rate=cfg.human.error_rate, undecidable_rate=cfg.human.undecidable_rate,
                    seed=cfg.seed + iteration)
    merged = storage.join(it, "human", "gold")
    stats = steps.run_job("verify", steps.merged(cfg.verify, {
        "action": "import", "data": {"exported": export, "output": merged}, "verdicts": verdicts,
        "gold": {"existing": gold}}), output=merged, where="stage1.verify")
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


def iteration(cfg: DictConfig, i: int, it: str, gold: str, silver: str, searched: str, embedder,
              fingerprint: str) -> dict:
    """One Stage 1 iteration under `it`; returns its metrics row (gold_after / silver_after: the sets
    the next iteration starts from)."""
    gold_rows, silver_rows = read_pairs(gold), read_pairs(silver)
    print(f"\n##### Stage 1 iteration {i}: D_silver {len(silver_rows)} pairs, D_gold {len(gold_rows)} pairs", flush=True)

    # 1. train on D_silver, pick the checkpoint by D_gold accuracy, and score D_gold with it
    rm = storage.join(it, "rm")
    rm_stats = steps.run_job("train_rm", steps.merged(cfg.train_rm, {
        "output": rm, "data": {"train": silver, "validation": gold}}), output=rm, where="stage1.train_rm")
    scored = storage.join(it, "gold_scored")
    steps.run_job("score", steps.merged(cfg.score, {
        "data": {"input": gold, "output": scored}, "models": [{"name": "rm", "path": storage.join(rm, "model")}]}),
        output=scored, where="stage1.score")
    p_by_key = {pair_key(r): p_of(r, "rm") for r in read_pairs(storage.join(scored, "pairs"))
                if p_of(r, "rm") is not None}

    # 2. error-driven adaptive retrieval from the unverified pool
    retrieved = storage.join(it, "retrieved")

    def retrieve() -> dict:
        # unverified: neither in D_gold nor labelled by the judges (the seed's own labels are unverified)
        taken = {pair_key(r) for r in gold_rows + [s for s in silver_rows if is_verified_silver(s)]}
        gold_vectors = embedder([embedding_text(g) for g in gold_rows])
        ids, figures = retrieve_neighbours(gold_rows, p_by_key, pool_search(cfg, searched, gold_vectors, taken),
                                           k_max=cfg.k_max, budget=cfg.max_labelled_per_iteration)
        write_pairs(pool_rows(cfg.data.pool, ids), storage.join(retrieved, "pairs"))
        return figures

    figures = runs.once(retrieved, fingerprint, retrieve)
    print(f"retrieval: {figures['gold_wrong']} of {figures['gold_pairs']} gold pairs wrong; "
          f"{figures['k_requested']} neighbours asked, {figures['retrieved']} distinct unverified pairs "
          f"(of {figures['candidates']})", flush=True)
    row = {"iteration": i, "silver_pairs": len(silver_rows), "gold_pairs": len(gold_rows),
           "gold_accuracy": rm_stats["best"]["val_accuracy"], "rm": storage.join(rm, "model"), **figures}
    if not figures["retrieved"]:
        print("the unverified pool is exhausted: Stage 1 stops here")
        return {**row, "pairs_added": 0, "gold_after": gold, "silver_after": silver, "exhausted": True}

    # 3. the judges label them, with the nearest gold pairs as examples
    labelled = storage.join(it, "labelled")
    ann = steps.run_job("annotate", steps.merged(cfg.annotate, {
        "data": {"input": storage.join(retrieved, "pairs"), "output": labelled},
        "examples": {"verified": gold}, "annotator": {"reuse_existing": True},
        "judging": {"enabled": True, "calibration": {"gold": gold if cfg.judges_on_gold else None}}}),
        output=labelled, where="stage1.annotate")

    # 4. humans verify some of them; their verdicts join D_gold
    new_gold, verify_stats = human_verdicts(cfg, it, storage.join(labelled, "pairs"), gold, i)

    # 5. the rest join D_silver in the judges' order
    next_silver = storage.join(it, "silver")

    def grow_silver() -> dict:
        in_gold = {pair_key(r) for r in read_pairs(new_gold)}
        added, label_counts = silver_additions(
            [r for r in read_pairs(storage.join(labelled, "pairs")) if pair_key(r) not in in_gold], iteration=i)
        kept = [r for r in silver_rows if pair_key(r) not in in_gold]  # a pair people verified is D_gold's now
        write_pairs(grown_silver(kept, added), storage.join(next_silver, "pairs"))
        return label_counts

    label_counts = runs.once(next_silver, fingerprint, grow_silver)
    return {**row, "judge_labelled": ann.get("pairs_labelled"), "judge_labels": label_counts,
            "pairs_added": label_counts["chosen"] + label_counts["rejected"],
            "judge_agreement": ann.get("mean_judge_agreement"), "position_bias_rate": ann.get("position_bias_rate"),
            "judge_threshold": ann.get("judge_threshold"), "judged": labelled,
            "judge_quarantined": ann["totals"]["quarantined"], "human": human_figures(verify_stats),
            "gold_after": new_gold, "silver_after": storage.join(next_silver, "pairs")}


@hydra.main(config_path="../conf", config_name="stage1", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    steps.check_blocks("stage1", cfg)
    console.set_verbose(cfg.verbose)
    run = JobRun.start(cfg, job="stage1", output=cfg.output, check=check_config, clear_on_overwrite=True)
    if run.done:
        return run.stats
    steps.shared_cluster(cfg.ray.address, cfg.ray.num_cpus)
    output, fingerprint = run.output, run.fingerprint

    searched = embed_pool(cfg, output, fingerprint)
    gold = storage.absolute(cfg.data.gold)
    silver = (storage.absolute(cfg.data.silver) if cfg.data.silver else
              seed_silver(cfg, storage.join(output, "pool_embeddings"), {pair_key(r) for r in read_pairs(gold)},
                          storage.join(output, "silver-seed"), fingerprint))
    embedder = Embedder(cfg.embeddings.model, cfg.embeddings.device)
    metrics = []
    for i in range(cfg.iterations):
        it = storage.join(output, f"iter-{i}")
        row = runs.once(storage.join(it, "metrics"), fingerprint,
                        lambda i=i, it=it, gold=gold, silver=silver: iteration(cfg, i, it, gold, silver, searched,
                                                                               embedder, fingerprint))
        metrics.append(row)
        gold, silver = row["gold_after"], row["silver_after"]
        if row.get("exhausted"):
            break

    storage.write_text(storage.join(output, "metrics.jsonl"), "".join(json.dumps(m) + "\n" for m in metrics))
    if not storage.is_uri(output):
        plot_gold_accuracy(metrics, storage.join(output, "gold_accuracy.png"))
    best = best_iteration(metrics)
    judged = [m for m in metrics if m.get("judged")]
    stats = {"iterations": len(metrics), "metrics": metrics, "best_iteration": best["iteration"],
             "judge_threshold": judged[-1]["judge_threshold"] if judged else None,
             "judged": judged[-1]["judged"] if judged else None,
             "best_rm": best["rm"], "best_gold_accuracy": best["gold_accuracy"], "gold": gold, "silver": silver,
             "gold_pairs": len(read_pairs(gold)), "silver_pairs": len(read_pairs(silver))}
    stats["result"] = (f"{len(metrics)} iteration(s): D_gold {stats['gold_pairs']} pairs, D_silver "
                       f"{stats['silver_pairs']}, best RM's gold accuracy {best['gold_accuracy']:.3f}")
    print(format_metrics(metrics))
    print(f"best RM: iteration {best['iteration']} (gold accuracy {best['gold_accuracy']:.3f}) {best['rm']}\n"
          f"D_gold {stats['gold_pairs']} pairs: {gold}\nD_silver {stats['silver_pairs']} pairs: {silver}")

    def log(wandb_run):
        for m in metrics:
            wandb_run.log({k: v for k, v in m.items() if isinstance(v, (int, float))}, step=m["iteration"])

    return run.finish(stats, log=log)


def human_figures(stats: dict) -> dict:
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
