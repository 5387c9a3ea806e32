"""Benchmark loaders: each benchmark's official file format -> a flat list of EvalItem.

An EvalItem is one prompt with its candidate responses and which of them are chosen (preferred,
correct, or the winner). A reward model scores every response of every item; ``harness.score_items``
then hands the scores to the benchmark's official scoring rule.

Local files are read for every benchmark (JSON list, JSONL, or Parquet; a directory is read file by
file in sorted order). RewardBench 1 / 2 and PPE live on the Hugging Face hub; their loaders also
take ``hub_id=`` and then call ``datasets.load_dataset`` (imported only then; it is optional).

Formats (field names as the official files spell them):
- RewardBench 1 (allenai/reward-bench, split "filtered"): prompt, chosen, rejected, subset, id.
- RewardBench 2 (allenai/reward-bench-2, split "test"): id, prompt, chosen (list), rejected (list),
  num_correct, subset. Chosen responses come first in ``responses`` (the scorer relies on it).
- RM-Bench (THU-KEG/RM-Bench data/*_filtered.json): id, prompt, chosen[3], rejected[3], and the
  domain in the file name (total_dataset.json carries a ``domain`` field instead).
- JudgeBench (ScalerLab/JudgeBench data/*.jsonl): pair_id, source, question, response_A,
  response_B, label ("A>B" / "B>A"). Official judge outputs (outputs/*.jsonl) are the same rows
  plus judge_name and judgments; ``load_judgebench_outputs`` returns them raw for replay.
- RMB (RMB_dataset/Pairwise_set/**.json, BoN_set/**.json): conversation_input (messages), and
  either chosen/reject ({llm_name, answer}) with pair_uid, or bon_best/loser_list with bon_uid;
  category_path.
- PPE human preference (lmarena-ai/PPE-Human-Preference-V1, split "test"): question_id, prompt,
  response_1 (model_a), response_2 (model_b), winner.
- PPE correctness (lmarena-ai/PPE-<set>-Best-of-K, split "train"): question_id, model_name,
  prompt, response_1..response_32, scores (ground-truth correctness per response),
  sampled_conflict_pairs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow.parquet as pq

# Benchmark keys, shared with scoring.PAPER_BENCHMARKS (RMB pairwise and best-of-N are one benchmark).
REWARDBENCH = "rewardbench"
REWARDBENCH2 = "rewardbench2"
RM_BENCH = "rm_bench"
JUDGEBENCH = "judgebench"
RMB = "rmb"
PPE_PREFERENCE = "ppe_preference"
PPE_CORRECTNESS = "ppe_correctness"

HUB_IDS: dict[str, str] = {
    REWARDBENCH: "allenai/reward-bench",
    REWARDBENCH2: "allenai/reward-bench-2",
    PPE_PREFERENCE: "lmarena-ai/PPE-Human-Preference-V1",
}
HUB_SPLITS: dict[str, str] = {
    REWARDBENCH: "filtered",  # rewardbench/utils.py load_eval_dataset: split="filtered"
    REWARDBENCH2: "test",  # rewardbench/utils.py load_bon_dataset_v2: split="test"
    PPE_PREFERENCE: "test",
    PPE_CORRECTNESS: "train",
}
# The five PPE correctness sets, by the subset names used in results.
PPE_CORRECTNESS_HUB_IDS: dict[str, str] = {
    "mmlu_pro": "lmarena-ai/PPE-MMLU-Pro-Best-of-K",
    "math": "lmarena-ai/PPE-MATH-Best-of-K",
    "gpqa": "lmarena-ai/PPE-GPQA-Best-of-K",
    "ifeval": "lmarena-ai/PPE-IFEval-Best-of-K",
    "mbpp_plus": "lmarena-ai/PPE-MBPP-Plus-Best-of-K",
}

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class EvalItem:
    """One prompt to score: its conversation, its candidate responses, and which are chosen.

    benchmark: one of the benchmark keys above.
    subset: the benchmark's own subset / category / domain name for this item (RewardBench subset,
        RM-Bench domain, JudgeBench source, RMB category_path, PPE correctness set).
    sample_id: the item's id, unique within the benchmark.
    conversation: the prompt as {"role", "content"} messages, ending with the user turn.
    responses: the candidate assistant responses, in the order the scorer expects.
    is_chosen: per response, True if it is the chosen / correct / winning one.
    extra: what the scorer needs beyond that (e.g. the JudgeBench label, the PPE winner,
        RewardBench 2 num_correct, PPE sampled_conflict_pairs).
    """

    benchmark: str
    subset: str
    sample_id: str
    conversation: list[dict]
    responses: list[str]
    is_chosen: list[bool]
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.responses) != len(self.is_chosen):
            raise ValueError(f"{self.key}: {len(self.responses)} responses but {len(self.is_chosen)} chosen flags")

    @property
    def key(self) -> str:
        """A key unique across benchmarks (sample ids repeat between benchmarks)."""
        return f"{self.benchmark}:{self.sample_id}"


# ---------------------------------------------------------------------------------------------
# Reading rows


def _read_file(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):
        # Some exports wrap the rows in one top-level key; accept exactly one list value.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise ValueError(f"{path}: expected a JSON list of records")
        data = lists[0]
    return list(data)


def data_files(path: str | Path, *, pattern: str = "*", recursive: bool = False) -> list[Path]:
    """The data files at path: the file itself, or the matching files under a directory."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no benchmark file or directory at {path}")
    found = path.rglob(pattern) if recursive else path.glob(pattern)
    files = sorted(p for p in found if p.is_file() and p.suffix in DATA_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no {pattern} data files ({', '.join(DATA_SUFFIXES)}) under {path}")
    return files


def read_rows(path: str | Path) -> list[dict]:
    """All records in a JSON / JSONL / Parquet file, or in those files under a directory."""
    rows: list[dict] = []
    for file in data_files(path, recursive=True):
        rows.extend(_read_file(file))
    return rows


def hub_rows(hub_id: str, split: str) -> list[dict]:
    """Rows of a Hugging Face hub dataset split, via the optional ``datasets`` package."""
    try:
        import datasets  # imported here: only hub loading needs it
    except ImportError as error:
        raise ImportError(
            f"loading {hub_id!r} from the Hugging Face hub needs the `datasets` package "
            "(pip install datasets); or pass a local path to the downloaded files instead"
        ) from error
    return [dict(row) for row in datasets.load_dataset(hub_id, split=split)]


def _rows(path, hub_id, split: str) -> list[dict]:
    if (path is None) == (hub_id is None):
        raise ValueError("pass exactly one of a local path or hub_id")
    return read_rows(path) if path is not None else hub_rows(hub_id, split)


# ---------------------------------------------------------------------------------------------
# Field helpers


def _messages(value: Any) -> list[dict]:
    """A prompt as {"role", "content"} messages: a bare string is one user turn."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages = []
    for message in value:
        role, content = message["role"], message["content"]
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise ValueError(f"malformed message {message!r}")
        messages.append({"role": role, "content": content})  # drop extras such as RMB's "language"
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("a prompt must end with a user message")
    return messages


def _texts(values: Iterable[Any]) -> list[str]:
    texts = list(values)
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"a response is not text: {text!r}")
    return texts


# ---------------------------------------------------------------------------------------------
# RewardBench 1 and 2


def rewardbench_items(rows: Iterable[Mapping]) -> list[EvalItem]:
    return [
        EvalItem(
            benchmark=REWARDBENCH,
            subset=row["subset"],
            sample_id=str(row["id"]),
            conversation=_messages(row["prompt"]),
            responses=_texts([row["chosen"], row["rejected"]]),
            is_chosen=[True, False],
        )
        for row in rows
    ]


def load_rewardbench(path: str | Path | None = None, *, hub_id: str | None = None,
                     split: str = HUB_SPLITS[REWARDBENCH]) -> list[EvalItem]:
    """RewardBench 1 from local files, or from the hub (hub_id=HUB_IDS["rewardbench"])."""
    return rewardbench_items(_rows(path, hub_id, split))


def rewardbench2_items(rows: Iterable[Mapping]) -> list[EvalItem]:
    items = []
    for row in rows:
        chosen, rejected = list(row["chosen"]), list(row["rejected"])
        num_correct = int(row["num_correct"]) if row.get("num_correct") is not None else len(chosen)
        if num_correct != len(chosen):
            # The official scorer treats the first num_correct completions as correct; they must be the chosen ones.
            raise ValueError(f"RewardBench 2 id {row['id']}: num_correct={num_correct} but {len(chosen)} chosen")
        items.append(
            EvalItem(
                benchmark=REWARDBENCH2,
                subset=row["subset"],
                sample_id=str(row["id"]),
                conversation=_messages(row["prompt"]),
                responses=_texts(chosen + rejected),
                is_chosen=[True] * len(chosen) + [False] * len(rejected),
                extra={"num_correct": num_correct},
            )
        )
    return items


def load_rewardbench2(path: str | Path | None = None, *, hub_id: str | None = None,
                      split: str = HUB_SPLITS[REWARDBENCH2]) -> list[EvalItem]:
    """RewardBench 2 from local files, or from the hub (hub_id=HUB_IDS["rewardbench2"])."""
    return rewardbench2_items(_rows(path, hub_id, split))


# ---------------------------------------------------------------------------------------------
# RM-Bench


def rm_bench_items(rows: Iterable[Mapping], *, domain: str | None = None) -> list[EvalItem]:
    """rows of one RM-Bench file; domain = the file's domain when rows carry none."""
    items = []
    for row in rows:
        row_domain = row.get("domain", domain)
        if row_domain is None:
            raise ValueError(f"RM-Bench id {row['id']}: no domain in the record or the file name")
        chosen, rejected = list(row["chosen"]), list(row["rejected"])
        if len(chosen) != 3 or len(rejected) != 3:
            raise ValueError(f"RM-Bench id {row['id']}: expected 3 chosen and 3 rejected responses")
        items.append(
            EvalItem(
                benchmark=RM_BENCH,
                subset=row_domain,
                # ids restart in every domain file, so qualify them with the domain
                sample_id=f"{row_domain}:{row['id']}",
                conversation=_messages(row["prompt"]),
                responses=_texts(chosen + rejected),
                is_chosen=[True] * 3 + [False] * 3,
            )
        )
    return items


def load_rm_bench(path: str | Path) -> list[EvalItem]:
    """RM-Bench from a data file, or a directory of ``<domain>_filtered.json`` files
    (or, failing those, ``total_dataset.json``, which holds every domain)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*_filtered.json")) or [path / "total_dataset.json"]
    else:
        files = [path]
    items = []
    for file in files:
        domain = file.stem.removesuffix("_filtered") if file.stem.endswith("_filtered") else None
        items.extend(rm_bench_items(_read_file(file), domain=domain))
    return items


# ---------------------------------------------------------------------------------------------
# JudgeBench

JUDGEBENCH_LABELS = ("A>B", "B>A")


def judgebench_items(rows: Iterable[Mapping]) -> list[EvalItem]:
    items = []
    for row in rows:
        label = row["label"]
        if label not in JUDGEBENCH_LABELS:
            raise ValueError(f"JudgeBench pair {row['pair_id']}: unexpected label {label!r}")
        items.append(
            EvalItem(
                benchmark=JUDGEBENCH,
                subset=row["source"],
                sample_id=str(row["pair_id"]),
                conversation=_messages(row["question"]),
                responses=_texts([row["response_A"], row["response_B"]]),
                is_chosen=[label == "A>B", label == "B>A"],
                extra={"label": label, "response_model": row.get("response_model")},
            )
        )
    return items


def load_judgebench(path: str | Path) -> list[EvalItem]:
    """JudgeBench pairs from one data JSONL, or every ``*.jsonl`` directly in a directory (e.g.
    data/, which holds the GPT-4o and the Claude-3.5-Sonnet response sets)."""
    items = []
    for file in data_files(path, pattern="*.jsonl"):
        items.extend(judgebench_items(_read_file(file)))
    return items


def load_judgebench_outputs(path: str | Path) -> list[dict]:
    """Official JudgeBench judge outputs (outputs/*.jsonl rows), raw, for replay_judgebench_outputs."""
    rows = _read_file(Path(path))
    for row in rows:
        if "judgments" not in row or "label" not in row or "source" not in row:
            raise ValueError(f"{path}: not a JudgeBench output file (a row lacks judgments/label/source)")
    return rows


# ---------------------------------------------------------------------------------------------
# RMB


def rmb_items(rows: Iterable[Mapping]) -> list[EvalItem]:
    """RMB rows of either set: pairwise rows (chosen/reject) and best-of-N rows (bon_best/loser_list)."""
    items = []
    for row in rows:
        conversation = _messages(row["conversation_input"])
        if "bon_best" in row:
            answers = [row["bon_best"]] + list(row["loser_list"])
            sample_id = f"bon:{row['bon_uid']}"  # pair_uid and bon_uid number spaces overlap
            kind = "bon"
        else:
            answers = [row["chosen"], row["reject"]]
            sample_id = f"pairwise:{row['pair_uid']}"
            kind = "pairwise"
        items.append(
            EvalItem(
                benchmark=RMB,
                subset=row["category_path"],
                sample_id=sample_id,
                conversation=conversation,
                responses=_texts(a["answer"] for a in answers),
                is_chosen=[True] + [False] * (len(answers) - 1),
                extra={"set": kind, "models": [a.get("llm_name") for a in answers]},
            )
        )
    return items


def load_rmb(path: str | Path) -> list[EvalItem]:
    """RMB from one set file or a directory (RMB_dataset/, Pairwise_set/, BoN_set/ or deeper)."""
    items = []
    for file in data_files(path, pattern="*.json", recursive=True):
        items.extend(rmb_items(_read_file(file)))
    return items


# ---------------------------------------------------------------------------------------------
# PPE

PPE_WINNER_FLAGS = {"model_a": [True, False], "model_b": [False, True]}


def ppe_preference_items(rows: Iterable[Mapping]) -> list[EvalItem]:
    return [
        EvalItem(
            benchmark=PPE_PREFERENCE,
            subset=str(row.get("language") or "all"),
            sample_id=str(row["question_id"]),
            conversation=_messages(row["prompt"]),
            responses=_texts([row["response_1"], row["response_2"]]),
            # a tie prefers neither response; the scorer skips it
            is_chosen=PPE_WINNER_FLAGS.get(row["winner"], [False, False]),
            extra={"winner": row["winner"]},
        )
        for row in rows
    ]


def load_ppe_preference(path: str | Path | None = None, *, hub_id: str | None = None,
                        split: str = HUB_SPLITS[PPE_PREFERENCE]) -> list[EvalItem]:
    """PPE human preference from local files, or from the hub (hub_id=HUB_IDS["ppe_preference"])."""
    return ppe_preference_items(_rows(path, hub_id, split))


_RESPONSE_COLUMN = re.compile(r"^response_(\d+)$")


def ppe_correctness_items(rows: Iterable[Mapping], *, subset: str) -> list[EvalItem]:
    items = []
    for row in rows:
        columns = sorted(
            (int(m.group(1)), key) for key in row if (m := _RESPONSE_COLUMN.match(key))
        )
        responses = _texts(row[key] for _, key in columns)
        correct = [bool(c) for c in row["scores"]]
        if len(correct) != len(responses):
            raise ValueError(f"PPE {subset} {row['question_id']}: {len(responses)} responses, {len(correct)} labels")
        pairs = row.get("sampled_conflict_pairs")
        sample_id = str(row["question_id"])
        if row.get("model_name"):
            sample_id += f":{row['model_name']}"  # a question is answered by more than one model
        items.append(
            EvalItem(
                benchmark=PPE_CORRECTNESS,
                subset=subset,
                sample_id=f"{subset}:{sample_id}",
                conversation=_messages(row["prompt"]),
                responses=responses,
                is_chosen=correct,
                extra={"conflict_pairs": [list(p) for p in pairs] if pairs is not None else None},
            )
        )
    return items


def ppe_correctness_subset(name: str) -> str:
    """The correctness set a hub id or file name refers to (e.g. "PPE-MMLU-Pro-Best-of-K" -> "mmlu_pro")."""
    normalized = re.sub(r"[^a-z0-9]+", "_", name.lower())
    # mmlu_pro before math, whose name is a substring of other words
    for subset in ("mmlu_pro", "mbpp_plus", "gpqa", "ifeval", "math"):
        if subset in normalized:
            return subset
    raise ValueError(f"cannot tell which PPE correctness set {name!r} is; pass subset=")


def load_ppe_correctness(path: str | Path | None = None, *, hub_id: str | None = None,
                         subset: str | None = None, split: str = HUB_SPLITS[PPE_CORRECTNESS]) -> list[EvalItem]:
    """One PPE correctness set from local files, or from the hub (see PPE_CORRECTNESS_HUB_IDS).
    subset defaults to the set named by the hub id or the file name."""
    if subset is None:
        subset = ppe_correctness_subset(hub_id if hub_id is not None else Path(path).name)
    return ppe_correctness_items(_rows(path, hub_id, split), subset=subset)
