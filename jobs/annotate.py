"""Annotate pairs with the five preference attributes and label them with LLM judges (DESIGN.md 1-2).

Reads:  data.input -- Parquet pairs (PAIR_SCHEMA), e.g. preprocess's pairs/status=kept
        examples.verified -- human-verified pairs (D_gold) the judges see as examples
Writes: data.output/pairs/status=kept|quarantined/  every input pair exactly once: kept with
        attributes, judge_votes, judge_label, judge_agreement, judge_examples; or quarantined with why
        data.output/stats.json, config.yaml, _SUCCESS (synpref.runner.runs); _work/ (each LLM round's
        answers, attempt by attempt, the pairs with their attributes and the pairs with their examples:
        a killed job resumes there, and they show what was retried)
Steps:  attributes (vLLM, JSON-schema output, retries) -> retrieve k nearest verified examples
        -> judge (judges x samples x both orders, retries) -> votes aggregated per pair
        (the pairs never enter an engine: answers and verdicts are joined back to them by key)
        (judging.enabled=false stops after the attributes: the pool pass before Stage 1)

    python jobs/annotate.py data.input=out/clean/pairs/status=kept data.output=out/ann examples.verified=out/gold
    ray job submit --working-dir . -- python jobs/annotate.py engine.device=cuda data.input=s3://... data.output=s3://...
"""

import math
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import ray
from omegaconf import DictConfig, OmegaConf
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a submitted working_dir is not installed

from synpref.annotation.attributes import attribute_schema  # noqa: E402
from synpref.annotation.calibration import calibrate, format_calibration  # noqa: E402
from synpref.annotation.judging import position_bias_counts  # noqa: E402
from synpref.annotation.llm_pass import answered, processor_config, run_with_retries  # noqa: E402
from synpref.annotation.logprob_judge import answer_prefix  # noqa: E402
from synpref.annotation.protocol import load_protocol, missing_guidelines  # noqa: E402
from synpref.annotation.requests import (CALIBRATION, KEY, LABEL_COLUMNS, STAGES, attribute_check,  # noqa: E402
                                         attribute_requests, calibration_rows, entering, has_attributes,
                                         judge_questions, pair_verdict, pairs_of, verdict_check, with_attributes,
                                         with_verdict)
from synpref.annotation.retrieval import INDEX_KINDS, Embedder, RetrieveExamples, embedding_text  # noqa: E402
from synpref.annotation.votes import COMBINE  # noqa: E402
from synpref.record import storage  # noqa: E402
from synpref.record.counts import format_table, outcome_counts, summary  # noqa: E402
from synpref.record.pairs_io import kept_path, read_pairs, write_dataset, write_pairs  # noqa: E402
from synpref.record.schema import KEPT  # noqa: E402
from synpref.rm.weights import resolve_model  # noqa: E402
from synpref.runner import runs  # noqa: E402
from synpref.runner.errors import BadConfig  # noqa: E402
from synpref.runner.job import JobRun, exits_with_status  # noqa: E402

JUDGE_MODES = ("sampled", "logprob")
ENGINE_EXECUTION_KEYS = ("actors", "batch_size", "max_num_seqs", "enable_prefix_caching", "enable_chunked_prefill",
                         "gpu_memory_utilization", "accelerator_type", "cpus_per_actor", "helper_num_cpus",
                         "cpu_kvcache_space_gib", "cpu_threads_bind")


def check_config(cfg: DictConfig) -> list[str]:
    problems = []
    if cfg.engine.device not in ("cpu", "cuda"):
        problems.append(f"engine.device={cfg.engine.device!r}: choose cpu or cuda")
    if cfg.examples.index not in INDEX_KINDS:
        problems.append(f"examples.index={cfg.examples.index!r}: choose one of {', '.join(INDEX_KINDS)}")
    if cfg.judging.enabled and not cfg.judges:
        problems.append("judges is empty: name at least one, e.g. judges=[{name: j, model: ..., samples: 1, temperature: 0.7}]")
    names = [j.name for j in cfg.judges]
    if len(set(names)) != len(names) or any(":" in n for n in names):
        problems.append(f"judge names {names} must be distinct and contain no ':'")
    if any(j.get("samples", 1) < 1 for j in cfg.judges) or cfg.examples.k < 0 or cfg.engine.actors < 1:
        problems.append("judges[].samples and engine.actors must be at least 1, examples.k at least 0")
    modes = [j.get("mode", "sampled") for j in cfg.judges]
    if set(modes) - set(JUDGE_MODES):
        problems.append(f"judges[].mode {modes}: choose from {list(JUDGE_MODES)}")
    for judge, mode in zip(cfg.judges, modes):
        if mode == "sampled" and (judge.get("samples") is None or judge.get("temperature") is None):
            problems.append(f"judge {judge.name}: mode sampled needs samples and temperature (e.g. "
                            f"+judges.0.samples=3 +judges.0.temperature=0.7)")
    if cfg.judging.combine not in COMBINE:
        problems.append(f"judging.combine={cfg.judging.combine!r}: choose from {list(COMBINE)}")
    elif cfg.judging.combine == "mean_score" and set(modes) != {"logprob"}:
        problems.append("judging.combine=mean_score averages logprob judges' scores: give every judge mode: logprob, "
                        "or combine=majority")
    target = cfg.judging.calibration.target_precision
    if target is not None and not 0.5 < target <= 1.0:
        problems.append(f"judging.calibration.target_precision={target}: a precision in (0.5, 1]")
    if min(cfg.annotator.max_retries, cfg.judging.max_retries) < 0:
        problems.append("max_retries must be at least 0")
    if cfg.join_partition_rows < 1:
        problems.append(f"join_partition_rows={cfg.join_partition_rows}: at least 1")
    return problems


def union_all(datasets: list):
    return datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]


def union_nonempty(datasets: list):
    """The union of the datasets that hold rows (an empty filter result has no schema to union), or None."""
    return union_all([d for d in datasets if d.count()] or [None])


def load_verified(paths, key: str) -> list[dict]:
    """The human-verified pairs of `paths` (the config key `key` names them): labelled chosen or
    flipped, undecidable left out."""
    if not paths:
        return []
    rows = [r for r in read_pairs(paths) if r.get("human_label") in ("chosen", "flipped")]
    if not rows:
        raise BadConfig([f"{key}={paths} holds no pair with human_label chosen or flipped"], job="annotate")
    return rows


def answer_tokens(judges) -> dict:
    """judge model -> (answer prefix, ids of "1" and "2") for the logprob judges' tokenizers."""
    from transformers import AutoTokenizer

    return {j.model: answer_prefix(AutoTokenizer.from_pretrained(resolve_model(j.model)))
            for j in judges if j.get("mode", "sampled") == "logprob"}


def annotation_figures(pairs_path: str, seconds: float, n_in: int) -> dict:
    """The summary beside the stage table: labels, agreement with the data's label, position bias."""
    labels, both, inconsistent, agreement = {}, 0, 0, []
    for row in read_pairs(pairs_path, columns=["judge_label", "judge_votes", "judge_agreement"]):
        if row["judge_label"] is None:  # attributes only (judging.enabled=false)
            continue
        labels[row["judge_label"]] = labels.get(row["judge_label"], 0) + 1
        agreement.append(row["judge_agreement"])
        asked_both, disagreed = position_bias_counts(row["judge_votes"])
        both += asked_both
        inconsistent += disagreed
    labelled = sum(labels.values())
    return {
        "pairs_labelled": labelled,
        "labels": labels,
        "agreement_with_original_label": round(labels.get("chosen", 0) / labelled, 4) if labelled else None,
        "mean_judge_agreement": round(sum(agreement) / len(agreement), 4) if agreement else None,
        "position_bias_rate": round(inconsistent / both, 4) if both else None,
        "samples_asked_both_orders": both,
        "pairs_per_second": round(n_in / max(seconds, 1e-9), 3),
    }


@hydra.main(config_path="../conf", config_name="annotate", version_base=None)
@exits_with_status
def main(cfg: DictConfig) -> dict:
    taxonomy = OmegaConf.to_container(cfg.taxonomy)
    protocol = load_protocol(cfg.protocol)
    inputs = [storage.absolute(p) for p in storage.as_list(cfg.data.input)]

    def check(cfg):
        return check_config(cfg) + [f"protocol {cfg.protocol} has no section '## {t}'"
                                    for t in missing_guidelines(protocol, taxonomy)]

    run = JobRun.start(cfg, job="annotate", output=cfg.data.output, check=check,
                       execution_keys=tuple(f"engine.{k}" for k in ENGINE_EXECUTION_KEYS),
                       extra={"input": inputs, "protocol_text": protocol})
    if run.done:
        return run.stats
    output = run.output
    work = storage.join(output, "_work")  # each LLM round's answers: a killed run resumes from them
    if cfg.overwrite:
        storage.delete_dir(work)

    ray.init(address=cfg.ray.address, num_cpus=runs.local_num_cpus(cfg.ray.address, cfg.ray.num_cpus))
    started = time.time()
    pairs = ray.data.read_parquet([kept_path(p) for p in inputs])
    if "status" in pairs.columns():  # a plain Parquet input that carries its rows' status
        pairs = pairs.filter(lambda row: row["status"] == KEPT)
    if cfg.data.limit:
        pairs = pairs.limit(cfg.data.limit)
    n_in = pairs.count()
    if n_in == 0:
        raise BadConfig([f"data.input={inputs}: no kept pairs there"], job="annotate")

    # 1. the five attributes, one structured-output request per pair (reuse_existing: only those without)
    schema = attribute_schema(taxonomy, max_desired=cfg.annotator.max_desired_attributes,
                              max_chars=cfg.annotator.max_guideline_chars)
    partitions = max(1, math.ceil(n_in / cfg.join_partition_rows))
    annotated, outcomes = [], []
    to_annotate = pairs
    if cfg.annotator.reuse_existing:
        to_annotate = pairs.filter(lambda row: not has_attributes(row))
        annotated.append(pairs.filter(has_attributes).map_batches(entering, batch_format="pyarrow"))
    if to_annotate.count():
        keyed = to_annotate.map_batches(entering, batch_format="pyarrow")
        requests = keyed.map_batches(attribute_requests, batch_format="pyarrow",
                                     fn_kwargs=dict(taxonomy=taxonomy, schema=schema, cfg=cfg.annotator))
        attr_paths, attr_failed = run_with_retries(
            requests, config=processor_config(cfg.engine, resolve_model(cfg.annotator.model)),
            check=attribute_check(schema), work=storage.join(work, "attributes"),
            max_retries=cfg.annotator.max_retries, retry_temperature=cfg.retry_temperature,
            fingerprint=run.fingerprint)
        results = union_nonempty([answered(attr_paths)] + [attr_failed] * (attr_failed is not None)).select_columns(
            [KEY, "answer_json", "error"])
        with_attrs = storage.join(work, "annotated")  # the pairs with their attributes (or quarantined), once
        runs.once(with_attrs, run.fingerprint, lambda: keyed.join(
            results, join_type="inner", on=(KEY,), num_partitions=partitions).map_batches(
            with_attributes, batch_format="pyarrow").write_parquet(with_attrs))
        done = ray.data.read_parquet(with_attrs)
        annotated.append(done.filter(lambda row: row["status"] == KEPT))
        outcomes.append(done.filter(lambda row: row["status"] != KEPT).map_batches(pairs_of, batch_format="pyarrow"))
    annotated = union_nonempty(annotated)

    if annotated is not None and not cfg.judging.enabled:
        outcomes.append(annotated.map_batches(pairs_of, batch_format="pyarrow"))
    elif annotated is not None:
        # 2. the k nearest human-verified examples of each pair to label, and of each D_gold pair the
        #    judges are measured on (calibration)
        retrieved = storage.join(work, "retrieved")
        gold = load_verified(cfg.judging.calibration.gold, "judging.calibration.gold")
        verified = load_verified(cfg.examples.verified, "examples.verified") if cfg.examples.k else []
        to_judge = annotated.union(ray.data.from_arrow(calibration_rows(gold))) if gold else annotated

        def retrieve():
            vectors = (Embedder(cfg.examples.embedder, cfg.examples.device)([embedding_text(p) for p in verified])
                       if verified else np.zeros((0, 1), np.float32))
            print(f"example index: {len(verified)} verified pairs, {cfg.examples.index}")
            to_judge.map_batches(
                RetrieveExamples, batch_format="pyarrow", batch_size=256, num_cpus=cfg.examples.num_cpus,
                compute=ActorPoolStrategy(min_size=1, max_size=cfg.examples.actors),
                fn_constructor_kwargs=dict(verified=verified, vectors=vectors, k=cfg.examples.k,
                                           embedder=cfg.examples.embedder, index=cfg.examples.index,
                                           device=cfg.examples.device),
            ).write_parquet(retrieved)

        runs.once(retrieved, run.fingerprint, retrieve)

        # 3. the judges: one round per judge model (its judges' samples x orders share the engine)
        by_model: dict[str, list] = {}
        for judge in cfg.judges:
            by_model.setdefault(judge.model, []).append(judge)
        tokens = answer_tokens(cfg.judges)
        examples = {v["pair_id"]: v for v in verified}
        voted, failed = [], []
        for i, (model, judges) in enumerate(by_model.items()):
            names = {j.name for j in judges}
            questions = ray.data.read_parquet(retrieved).map_batches(
                judge_questions, batch_format="pyarrow", fn_kwargs=dict(
                    judges=judges, protocol=protocol, cfg=cfg.judging, answer_tokens=tokens, examples=examples)
            ).filter(lambda row, names=names: row["judge"] in names).drop_columns(["judge"])
            paths, judge_failed = run_with_retries(
                questions, config=processor_config(cfg.engine, resolve_model(model)), check=verdict_check,
                work=storage.join(work, f"judge-{i}"), max_retries=cfg.judging.max_retries,
                retry_temperature=cfg.retry_temperature, fingerprint=run.fingerprint)
            voted.append(answered(paths))
            if judge_failed is not None:
                failed.append(judge_failed)
        votes = union_nonempty(voted + failed)  # every question of every pair: answered or failed

        # 4. the judges on D_gold: their figures, and the threshold that reaches the target precision
        threshold, calibration = cfg.judging.logprob.threshold, None
        if gold:
            answers = votes.filter(lambda row: row[KEY].startswith(CALIBRATION)).select_columns(
                ["question_id", KEY, "answer_json", "error"]).take_all()
            asked = {row[KEY]: row for batch in ray.data.read_parquet(retrieved).filter(
                lambda row: row[KEY].startswith(CALIBRATION)).iter_batches(batch_format="pyarrow", batch_size=None)
                for row in batch.to_pylist()}
            threshold, calibration, judged_gold = calibrate(
                answers, asked, threshold=threshold, combine=cfg.judging.combine,
                target_precision=cfg.judging.calibration.target_precision)
            write_pairs(judged_gold, storage.join(output, "calibration", "pairs"))  # the gold pairs as judged
            print(format_calibration(calibration))
        verdicts = votes.filter(lambda row: not row[KEY].startswith(CALIBRATION)).groupby(KEY).map_groups(
            pair_verdict, batch_format="pyarrow", fn_kwargs=dict(threshold=threshold, combine=cfg.judging.combine))
        to_label = ray.data.read_parquet(retrieved).filter(lambda row: not row[KEY].startswith(CALIBRATION))
        outcomes.append(to_label.drop_columns(LABEL_COLUMNS).join(
            verdicts, join_type="inner", on=(KEY,), num_partitions=partitions).map_batches(
            with_verdict, batch_format="pyarrow"))

    pairs_path = storage.join(output, "pairs")
    write_dataset(union_all(outcomes), pairs_path)
    elapsed = time.time() - started

    stats = summary(outcome_counts(pairs_path), STAGES if cfg.judging.enabled else STAGES[:1], unit="pairs")
    stats.update(seconds=round(elapsed, 2), **annotation_figures(pairs_path, elapsed, n_in))
    if cfg.judging.enabled and annotated is not None:
        stats.update(judge_threshold=threshold, calibration=calibration)
    if stats["records_in"] != n_in:
        stats["reconcile"]["ok"] = False
        stats["reconcile"]["problems"].append(f"{n_in} pairs read but {stats['records_in']} rows written")
    stats["result"] = annotation_line(stats, elapsed)
    print(format_table(stats))
    print(stats["result"])
    return run.finish(stats)


def annotation_line(stats: dict, elapsed: float) -> str:
    if not stats["pairs_labelled"]:  # the attribute pass: no judges asked
        return (f"{stats['records_in']} pairs annotated with their five attributes in {elapsed:.1f} s "
                f"({stats['pairs_per_second']} pairs/s); {stats['totals']['quarantined']} quarantined")
    return (f"{stats['pairs_labelled']} pairs labelled in {elapsed:.1f} s ({stats['pairs_per_second']} pairs/s); "
            f"labels {stats['labels']}; agreement with the original label "
            f"{stats['agreement_with_original_label']}; position-bias rate {stats['position_bias_rate']} "
            f"of {stats['samples_asked_both_orders']} samples asked in both orders")


if __name__ == "__main__":
    main()
