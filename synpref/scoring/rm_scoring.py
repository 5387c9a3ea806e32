"""Reward-model scoring of pairs: r(chosen), r(rejected) and p = sigmoid(r_chosen - r_rejected) per
model, appended to each pair's `rm_scores` (DESIGN.md sections 2-3: the best RM's p drives retrieval
and Stage 2's confidence split; the gold RM's p is half of the keep rule).

Two backends, the same inputs: texts are made and encoded with synpref.rm.format (chat template,
BOS strip, left truncation) with each model's own tokenizer, as training and serving do.
  transformers: `ScorePairs`, a callable class for `map_batches` holding every model (so best RM and
      gold RM score a batch in one pass over the data); each model scores the batch's chosen and
      rejected sequences together through RewardScorer.score_ids (length-sorted micro-batches).
  vllm: `score_with_vllm`, one ray.data.llm processor (task_type="classify") per model, chained in one
      pipeline; each pair becomes two token-id requests whose raw logits (`embeddings`, activation
      off) come back per side and are regrouped by pair.

A kept pair too long for `max_length` under any model's tokenizer is scored on its last max_length
tokens (overflow=truncate: it stays kept, marked stage=score reason=truncated so the count is read
back from the output) or quarantined (overflow=quarantine: reason too_long). A decision of an
earlier job moves into `history`. Rows that are not kept pass through unchanged. An entry of the
same model name is replaced; entries of other models stay.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.dataset as pads

from synpref.record import storage
from synpref.rm.format import encode, rm_text
from synpref.record.counts import outcome_counts, summary
from synpref.record.ops import record_decision, with_score
from synpref.record.schema import KEPT, QUARANTINED, to_table

STAGE = "score"
STAGES = [STAGE]
OVERFLOW_POLICIES = ("truncate", "quarantine")
TOO_LONG = "too_long"
TRUNCATED = "truncated"
ENGINE_ERROR = "engine_error"
BACKENDS = ("transformers", "vllm")


# --- per pair -------------------------------------------------------------------------------------

def decide(row: dict, status: str, reason: str | None) -> None:
    """This stage's outcome: a kept pair scored whole is no decision of ours (stage null)."""
    record_decision(row, stage=STAGE if (status != KEPT or reason) else None, status=status, reason=reason)


def is_kept(row: dict) -> bool:
    return (row.get("status") or KEPT) == KEPT  # a pairs/status=kept folder carries no status column


def input_row_key(row: dict) -> str:
    """A stable key per input row, to regroup its two sides after the engine (pair_id alone repeats
    when dedup was off)."""
    key = json.dumps([row.get("pair_id"), row.get("source"), row.get("source_record"), row.get("record_pair_index")])
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Equal for tokenizers that make the same ids (two RMs fine-tuned from one base share them)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    parts = [backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items())),
             str(tokenizer.chat_template), str(tokenizer.bos_token)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def encode_pairs(tokenizer, rows: list[dict], max_length: int):
    """(chosen ids, rejected ids, too long) per pair, through rm_format; ids left-truncated."""
    texts = [rm_text(tokenizer, r["conversation"], r["chosen"]) for r in rows]
    texts += [rm_text(tokenizer, r["conversation"], r["rejected"]) for r in rows]
    ids, truncated = encode(tokenizer, texts, max_length) if texts else ([], [])
    n = len(rows)
    return ids[:n], ids[n:], [a or b for a, b in zip(truncated[:n], truncated[n:])]


class PairEncoder:
    """Token ids of pairs for several models; models whose tokenizers agree encode once."""

    def __init__(self, tokenizers: list, max_length: int):
        self.max_length = max_length
        self.tokenizers = tokenizers
        self.fingerprints = [tokenizer_fingerprint(t) for t in tokenizers]

    def __call__(self, rows: list[dict]) -> tuple[list[tuple], list[bool]]:
        """Per model (chosen ids, rejected ids); and per pair: too long under any model."""
        done: dict[str, tuple] = {}
        for tokenizer, fp in zip(self.tokenizers, self.fingerprints):
            if fp not in done:
                done[fp] = encode_pairs(tokenizer, rows, self.max_length)
        too_long = [any(flags[i] for *_, flags in done.values()) for i in range(len(rows))]
        return [done[fp][:2] for fp in self.fingerprints], too_long


def overflow_outcome(too_long: bool, overflow: str) -> tuple[str, str | None]:
    if not too_long:
        return KEPT, None
    return (QUARANTINED, TOO_LONG) if overflow == "quarantine" else (KEPT, TRUNCATED)


# --- the transformers backend ---------------------------------------------------------------------

def score_rows(rows: list[dict], scorers: list[tuple[str, object]], encoder: PairEncoder, overflow: str) -> list[dict]:
    """Score the kept rows with every (name, RewardScorer); returns the rows, updated in place."""
    todo = [r for r in rows if is_kept(r)]
    per_model, too_long = encoder(todo)
    keep = []
    for i, (row, long) in enumerate(zip(todo, too_long)):
        status, reason = overflow_outcome(long, overflow)
        decide(row, status, reason)
        if status == KEPT:
            keep.append(i)
    for (name, scorer), (chosen, rejected) in zip(scorers, per_model):
        ids = [chosen[i] for i in keep] + [rejected[i] for i in keep]
        rewards = scorer.score_ids(ids) if ids else []  # chosen and rejected in one length-sorted call
        for j, i in enumerate(keep):
            todo[i]["rm_scores"] = with_score(todo[i].get("rm_scores"), name, rewards[j], rewards[len(keep) + j])
    return rows


class ScorePairs:
    """`ds.map_batches(ScorePairs, batch_format="pyarrow", compute=ActorPoolStrategy(...),
    fn_constructor_kwargs=dict(models=[{name, path}, ...], max_length=..., overflow=...))`.

    Holds every model on `device`; a batch of PAIR_SCHEMA rows in, the same rows out, scored."""

    def __init__(self, models: list[dict], *, max_length: int, overflow: str = "truncate", device: str = "cpu",
                 dtype: str = "auto", max_tokens_per_forward: int = 4096, max_rows_per_forward: int = 64,
                 torch_threads: int | None = None):
        from synpref.rm.weights import resolve_model
        from synpref.rm.scorer import RewardScorer

        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow={overflow!r}: choose one of {OVERFLOW_POLICIES}")
        self.scorers = [(m["name"], RewardScorer(resolve_model(m["path"]), device=device, dtype=dtype,
                                                 max_tokens_per_forward=max_tokens_per_forward,
                                                 max_rows_per_forward=max_rows_per_forward,
                                                 torch_threads=torch_threads)) for m in models]
        self.encoder = PairEncoder([s.tokenizer for _, s in self.scorers], max_length)
        self.overflow = overflow

    def __call__(self, batch: pa.Table) -> pa.Table:
        return to_table(score_rows(batch.to_pylist(), self.scorers, self.encoder, self.overflow))


# --- the vLLM backend (ray.data.llm, task_type="classify") ----------------------------------------

def side_schema(n_models: int) -> pa.Schema:
    return pa.schema([("key", pa.string()), ("side", pa.string()), ("payload", pa.string())]
                     + [(f"ids_{i}", pa.list_(pa.int64())) for i in range(n_models)])


def reward_schema(n_models: int) -> pa.Schema:
    return pa.schema(list(side_schema(n_models)) + [(f"reward_{i}", pa.float64()) for i in range(n_models)]
                     + [("error", pa.string())])


class SideRequests:
    """PAIR rows -> one `pair` row each (the pair as JSON, its overflow decided) plus, per pair to
    score, a `chosen` and a `rejected` row with each model's token ids (column ids_<i>)."""

    def __init__(self, model_paths: list[str], *, max_length: int, overflow: str):
        from synpref.rm.scorer import load_tokenizer

        self.n = len(model_paths)
        self.encoder = PairEncoder([load_tokenizer(p) for p in model_paths], max_length)
        self.overflow = overflow
        self.schema = side_schema(self.n)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        todo = [r for r in rows if is_kept(r)]
        per_model, too_long = self.encoder(todo)
        position = {id(r): i for i, r in enumerate(todo)}
        out = []
        for row in rows:
            key, i = input_row_key(row), position.get(id(row))
            sides = []
            if i is not None:
                status, reason = overflow_outcome(too_long[i], self.overflow)
                decide(row, status, reason)
                if status == KEPT:
                    sides = [(side, [ids[k][i] for ids in per_model]) for k, side in enumerate(("chosen", "rejected"))]
            payload = json.dumps({"score": bool(sides), "pair": row}, ensure_ascii=False, default=str)
            out.append({"key": key, "side": "pair", "payload": payload})
            for side, ids in sides:
                out.append({"key": key, "side": side, **{f"ids_{m}": x for m, x in enumerate(ids)}})
        return pa.Table.from_pylist(out, schema=self.schema)


def conform(schema: pa.Schema):
    """A batch function giving every block one schema (a block whose rewards are all null would
    otherwise carry a null-typed column and not union with the others)."""

    def cast(batch: pa.Table) -> pa.Table:
        return pa.table({name: (batch[name] if name in batch.column_names else pa.nulls(batch.num_rows))
                         .cast(schema.field(name).type) for name in schema.names}, schema=schema)

    return cast


def collect_reward(index: int, n_models: int):
    """After model `index`'s engine: keep our columns, its logit as reward_<index>, or its error."""
    names = reward_schema(n_models).names

    def collect(row: dict) -> dict:
        out = {name: row.get(name) for name in names}
        error, embeddings = row.get("__inference_error__"), row.get("embeddings")
        if error or embeddings is None or len(embeddings) != 1:
            out["error"] = out["error"] or f"{ENGINE_ERROR}:model {index}: {str(error)[:200] or 'no logit'}"
        else:
            out[f"reward_{index}"] = float(embeddings[0])
        return out

    return collect


def classify_config(engine, model_path: str):
    """synpref.annotation.llm_pass.processor_config's engine settings (a CPU placement group on CPU, ...) for a
    pooling model: task_type classify, token ids in (no chat-template, tokenize, detokenize stages)."""
    from synpref.annotation.llm_pass import processor_config

    config = processor_config(engine, model_path)
    engine_kwargs = {**config.engine_kwargs, "task_type": "classify"}
    return config.model_copy(update=dict(task_type="classify", engine_kwargs=engine_kwargs,
                                         chat_template_stage=False, tokenize_stage=False, detokenize_stage=False))


def score_with_vllm(pairs, models: list[dict], *, engine, max_length: int, overflow: str):
    """Pairs (a Ray Dataset of PAIR rows) -> the same rows scored by every model through vLLM."""
    from ray.data.llm import build_processor

    from synpref.rm.weights import resolve_model

    paths = [resolve_model(m["path"]) for m in models]
    n, helper = len(models), dict(num_cpus=engine.helper_num_cpus) if engine.device == "cpu" else {}
    sides = pairs.map_batches(SideRequests, batch_format="pyarrow", fn_constructor_kwargs=dict(
        model_paths=paths, max_length=max_length, overflow=overflow), **helper)
    schema = reward_schema(n)
    requests = sides.filter(lambda row: row["side"] != "pair").map_batches(conform(schema), batch_format="pyarrow",
                                                                          **helper)
    for i, path in enumerate(paths):
        processor = build_processor(
            classify_config(engine, path),  # raw logits: vLLM's default puts a sigmoid on a one-label head
            preprocess=lambda row, i=i: {"tokenized_prompt": row[f"ids_{i}"], "pooling_params": {"use_activation": False}},
            preprocess_map_kwargs=helper, postprocess_map_kwargs=helper)
        requests = processor(requests).map(collect_reward(i, n), **helper).map_batches(
            conform(schema), batch_format="pyarrow", **helper)
    settled = sides.filter(lambda row: row["side"] == "pair").map_batches(conform(schema), batch_format="pyarrow",
                                                                         **helper)
    names = [m["name"] for m in models]
    return settled.union(requests).groupby("key").map_groups(assemble, batch_format="pyarrow",
                                                             fn_kwargs=dict(names=names), **helper)


def assemble(group: pa.Table, names: list[str]) -> pa.Table:
    """One key's `pair` row(s) and side rows -> the pair, scored (or quarantined on an engine error)."""
    rows = group.drop_columns([c for c in group.column_names if c.startswith("ids_")]).to_pylist()
    sides = {r["side"]: r for r in rows if r["side"] != "pair"}
    out = []
    for row in rows:
        if row["side"] != "pair":
            continue
        payload = json.loads(row["payload"])
        pair = payload["pair"]
        if payload["score"]:
            errors = [s["error"] for s in sides.values() if s["error"]]
            if errors or set(sides) != {"chosen", "rejected"}:
                decide(pair, QUARANTINED, ENGINE_ERROR)
            else:
                for i, name in enumerate(names):
                    pair["rm_scores"] = with_score(pair.get("rm_scores"), name, sides["chosen"][f"reward_{i}"],
                                                   sides["rejected"][f"reward_{i}"])
        out.append(pair)
    return to_table(out)


# --- what a run did, read back from its output ----------------------------------------------------

def model_figures(kept_scores: list[list[dict] | None], names: list[str]) -> dict:
    """Per model over the kept pairs: pairs with its score, mean p, share with p > 0.5."""
    figures = {}
    for name in names:
        ps = [s["p"] for scores in kept_scores for s in scores or [] if s["model"] == name]
        figures[name] = {"pairs": len(ps), "mean_p": round(sum(ps) / len(ps), 4) if ps else None,
                         "share_p_above_half": round(sum(p > 0.5 for p in ps) / len(ps), 4) if ps else None}
    return figures


def format_models(figures: dict) -> str:
    lines = [f"{'model':<18} {'pairs':>10} {'mean p':>9} {'p > 0.5':>9}"]
    for name, f in figures.items():
        mean = f"{f['mean_p']:.4f}" if f["mean_p"] is not None else "-"
        share = f"{f['share_p_above_half']:.4f}" if f["share_p_above_half"] is not None else "-"
        lines.append(f"{name:<18} {f['pairs']:>10} {mean:>9} {share:>9}")
    return "\n".join(lines)


def score_stats(input_counts, pairs_path: str, names: list[str], seconds: float) -> dict:
    """The stage table of the pairs that came in kept (in = kept + quarantined), read back from the
    output; the rows that came in not kept are counted as passed through and must come out unchanged."""
    out_counts = outcome_counts(pairs_path)
    passed = {k: n for k, n in input_counts.items() if k[0] != KEPT}
    ours = out_counts.copy()
    ours.subtract(passed)
    ours = +ours  # drop the zeros
    stats = summary(ours, STAGES, unit="pairs")
    n_kept_in = sum(n for k, n in input_counts.items() if k[0] == KEPT)
    problems = stats["reconcile"]["problems"]
    if any(out_counts[k] < n for k, n in passed.items()):
        problems.append(f"rows not kept on input did not all pass through unchanged: {passed} in, {dict(out_counts)} out")
    if stats["records_in"] != n_kept_in:
        problems.append(f"{n_kept_in} kept pairs read but {stats['records_in']} came out of the score stage")
    stats["reconcile"]["ok"] = not problems

    fs, path = storage.filesystem(pairs_path)
    kept_scores = []
    if fs.get_file_info(f"{path}/status={KEPT}").type.name != "NotFound":
        kept_scores = pads.dataset(f"{path}/status={KEPT}", filesystem=fs, format="parquet").to_table(
            columns=["rm_scores"])["rm_scores"].to_pylist()
    scored = stats["totals"][KEPT]
    stats.update(job="score", seconds=round(seconds, 2), passed_through=sum(passed.values()), pairs_scored=scored,
                 pairs_truncated=sum(n for k, n in ours.items() if k[:3] == (KEPT, STAGE, TRUNCATED)),
                 pairs_per_second=round(scored / max(seconds, 1e-9), 3), models=model_figures(kept_scores, names))
    return stats
