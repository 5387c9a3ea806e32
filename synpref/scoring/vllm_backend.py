"""The vLLM backend of reward-model scoring: one ray.data.llm processor (task_type="classify") per
model, chained in one pipeline; each pair becomes two token-id requests whose raw logits
(`embeddings`, activation off) come back per side and are regrouped by pair.

The engine rows carry only a key, the side and each model's token ids (REQUEST columns); the pair
itself stays in its schema columns on a `pair` row that goes round the engines and meets its two
sides again in a groupby on the key.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from synpref.record.ops import row_key, with_score
from synpref.record.schema import KEPT, PAIR_SCHEMA, QUARANTINED, to_table
from synpref.scoring.pairs import ENGINE_ERROR, PairEncoder, decide, is_kept, overflow_outcome

def request_schema(n_models: int) -> pa.Schema:
    """An engine row: the pair's key, its side, each model's token ids and, once scored, its rewards."""
    return pa.schema([("key", pa.string()), ("side", pa.string())]
                     + [(f"ids_{i}", pa.list_(pa.int64())) for i in range(n_models)]
                     + [(f"reward_{i}", pa.float64()) for i in range(n_models)] + [("error", pa.string())])


def side_schema(n_models: int) -> pa.Schema:
    """Engine rows and `pair` rows in one schema (the pair's own columns are null on a side row)."""
    return pa.schema(list(request_schema(n_models)) + list(PAIR_SCHEMA))


class SideRequests:
    """PAIR rows -> one `pair` row each (its overflow decided) plus, per pair to score, a `chosen` and
    a `rejected` row with each model's token ids (column ids_<i>)."""

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
            key, i = row_key(row), position.get(id(row))
            sides = []
            if i is not None:
                status, reason = overflow_outcome(too_long[i], self.overflow)
                decide(row, status, reason)
                if status == KEPT:
                    sides = [(side, [ids[k][i] for ids in per_model]) for k, side in enumerate(("chosen", "rejected"))]
            out.append({**row, "key": key, "side": "pair"})
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
    names = request_schema(n_models).names

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
    schema = request_schema(n)
    requests = sides.filter(lambda row: row["side"] != "pair").map_batches(conform(schema), batch_format="pyarrow",
                                                                          **helper)
    for i, path in enumerate(paths):
        processor = build_processor(
            classify_config(engine, path),  # raw logits: vLLM's default puts a sigmoid on a one-label head
            preprocess=lambda row, i=i: {"tokenized_prompt": row[f"ids_{i}"], "pooling_params": {"use_activation": False}},
            preprocess_map_kwargs=helper, postprocess_map_kwargs=helper)
        requests = processor(requests).map(collect_reward(i, n), **helper).map_batches(
            conform(schema), batch_format="pyarrow", **helper)
    settled = sides.filter(lambda row: row["side"] == "pair")
    requests = requests.map_batches(conform(side_schema(n)), batch_format="pyarrow", **helper)
    names = [m["name"] for m in models]
    return settled.union(requests).groupby("key").map_groups(assemble, batch_format="pyarrow",
                                                             fn_kwargs=dict(names=names), **helper)


def assemble(group: pa.Table, names: list[str]) -> pa.Table:
    """One key's `pair` row(s) and side rows -> the pair, scored (or quarantined on an engine error).
    A pair still kept after SideRequests is one whose sides went to the engines."""
    is_pair = pc.equal(group["side"], "pair")
    sides = {r["side"]: r for r in group.filter(pc.invert(is_pair)).select(request_schema(len(names)).names).to_pylist()}
    out = []
    for pair in group.filter(is_pair).select(PAIR_SCHEMA.names).to_pylist():
        if is_kept(pair):
            errors = [s["error"] for s in sides.values() if s["error"]]
            if errors or set(sides) != {"chosen", "rejected"}:
                decide(pair, QUARANTINED, ENGINE_ERROR)
            else:
                for i, name in enumerate(names):
                    pair["rm_scores"] = with_score(pair.get("rm_scores"), name, sides["chosen"][f"reward_{i}"],
                                                   sides["rejected"][f"reward_{i}"])
        out.append(pair)
    return to_table(out)
