"""What every benchmark loader shares: the EvalItem they all produce, reading rows from local files
or the Hugging Face hub, and the field checks that turn a row into messages and response texts.

An EvalItem is one prompt with its candidate responses and which of them are chosen (preferred,
correct, or the winner). A reward model scores every response of every item; ``harness.score_items``
then hands the scores to the benchmark's official metrics. Each benchmark's own module (rewardbench,
rewardbench2, rm_bench, judgebench, rmb, ppe) holds its loader and its metrics.

Local files are read for every benchmark (JSON list, JSONL, or Parquet; a directory is read file by
file in sorted order). RewardBench 1 / 2 and PPE also live on the Hugging Face hub; ``hub_rows``
reads them through ``datasets.load_dataset`` (imported only then; it is optional).

A benchmark's folder laid out as its official repo also holds files that are not its data (other
models' results, a README, a config): each is skipped with a printed line. A data file that lacks
a field is a ValueError naming the file, the record and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow.parquet as pq

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class EvalItem:
    """One prompt to score: its conversation, its candidate responses, and which are chosen.

    benchmark: the benchmark's key (one of headline.PAPER_BENCHMARKS).
    subset: the benchmark's own subset / category / domain name for this item (RewardBench subset,
        RM-Bench domain, JudgeBench source, RMB category_path, PPE correctness set).
    sample_id: the item's id, unique within the benchmark.
    conversation: the prompt as {"role", "content"} messages, ending with the user turn.
    responses: the candidate assistant responses, in the order the metrics expect.
    is_chosen: per response, True if it is the chosen / correct / winning one.
    extra: what the metrics need beyond that (e.g. the JudgeBench label, the PPE winner,
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
# Reading files


class NotRecords(ValueError):
    """A data file whose content is not a list of records (a config, a summary): not benchmark data."""


def say_skipped(file: Path, why: str) -> None:
    """Say that a file under a benchmark's folder is not read, and why (the run goes on without it)."""
    print(f"skipping {file}: {why}")


def _read_file(path: Path) -> list[dict]:
    """The records of a JSON list, JSONL or Parquet file (NotRecords if it holds something else)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if isinstance(data, dict):
        # Some exports wrap the rows in one top-level key; accept exactly one list value.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise NotRecords("a JSON object, not a list of records")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise NotRecords("not a list of records")
    return data


def data_files(path: str | Path, *, pattern: str = "*", recursive: bool = False) -> list[Path]:
    """The data files at path: the file itself, or the files matching pattern under a directory.

    Hidden files and folders (.git, .gitattributes of a clone) are passed over; any other matching
    file without a data suffix (a README, a script) is skipped with a printed line.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no benchmark file or directory at {path}")
    files = []
    for found in sorted(path.rglob(pattern) if recursive else path.glob(pattern)):
        if not found.is_file() or any(part.startswith(".") for part in found.relative_to(path).parts):
            continue
        if found.suffix in DATA_SUFFIXES:
            files.append(found)
        else:
            say_skipped(found, f"not a data file ({', '.join(DATA_SUFFIXES)})")
    if not files:
        raise FileNotFoundError(f"no {pattern} data files ({', '.join(DATA_SUFFIXES)}) under {path}")
    return files


def hub_rows(hub_id: str, split: str) -> list[dict]:
    """Rows of a Hugging Face hub dataset split.

    ``hf://datasets/<org>/<name>[@<revision>][/<path>]``, the naming pre-processing's ``data.input`` takes, goes
    through the same resolution (synpref.preprocess.hub: the README's configs, the hub's layouts, the synpref
    cache, HF_HUB_OFFLINE); a bare id ("org/name") through the optional ``datasets`` package, as before."""
    if hub_id.startswith("hf://"):
        import gzip

        from synpref.preprocess.hub import hub_dataset_files

        rows = []
        for file in hub_dataset_files(hub_id, split=split, key="hub_id"):
            if not file.endswith(".gz"):
                rows += _read_file(Path(file))
                continue
            with gzip.open(file, "rt", encoding="utf-8") as f:  # compressed JSONL, or one compressed JSON list
                text = f.read()
            if file.endswith(".json.gz"):
                rows += json.loads(text)
            else:
                rows += [json.loads(line) for line in text.splitlines() if line.strip()]
        return rows
    try:
        import datasets  # imported here: only hub loading needs it
    except ImportError as error:
        raise ImportError(
            f"loading {hub_id!r} from the Hugging Face hub needs the `datasets` package "
            "(pip install datasets); or pass a local path to the downloaded files instead"
        ) from error
    return [dict(row) for row in datasets.load_dataset(hub_id, split=split)]


# ---------------------------------------------------------------------------------------------
# From records to items


def items_from_rows(rows: Iterable[Mapping], to_item: Callable[[Mapping], EvalItem], *,
                    source: str) -> list[EvalItem]:
    """to_item of every record; a record without a field to_item reads, or with a value it cannot
    use, is a ValueError naming the source (a file, a hub id), the record and the field."""
    items = []
    for number, row in enumerate(rows, 1):
        try:
            items.append(to_item(row))
        except KeyError as error:
            raise ValueError(f"{source}: record {number} has no field {error.args[0]!r}") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: record {number}: {error}") from error
    return items


def items_from_file(file: Path, to_item: Callable[[Mapping], EvalItem], *, benchmark: str,
                    prompt_field: str) -> list[EvalItem]:
    """The items of one file; none, and a printed line, for a file that is not the benchmark's data.

    A file none of whose records has the benchmark's prompt field (another model's per-item
    results, a summary, a config) is not data. One that has prompts but lacks another field is
    malformed data: a ValueError naming it.
    """
    try:
        rows = _read_file(file)
    except NotRecords as reason:
        say_skipped(file, f"not {benchmark} data ({reason})")
        return []
    if not any(prompt_field in row for row in rows):
        say_skipped(file, f"not {benchmark} data (no record has a {prompt_field!r} field: other models' "
                          "results, a summary or a config)")
        return []
    return items_from_rows(rows, to_item, source=str(file))


def load_items(path: str | Path | None, hub_id: str | None, split: str, to_item: Callable[[Mapping], EvalItem],
               *, benchmark: str, prompt_field: str) -> list[EvalItem]:
    """Items from local files (every data file under a directory) or from a hub split: exactly one."""
    if (path is None) == (hub_id is None):
        raise ValueError("pass exactly one of a local path or hub_id")
    if hub_id is not None:
        return items_from_rows(hub_rows(hub_id, split), to_item, source=f"{hub_id} (split {split})")
    return [item for file in data_files(path, recursive=True)
            for item in items_from_file(file, to_item, benchmark=benchmark, prompt_field=prompt_field)]


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
# From an item and its rewards to a metrics record


def split_scores(item: EvalItem, scores: list[float]) -> tuple[list[float], list[float]]:
    """(scores of chosen responses, scores of rejected ones), each in response order."""
    chosen = [s for s, ok in zip(scores, item.is_chosen) if ok]
    rejected = [s for s, ok in zip(scores, item.is_chosen) if not ok]
    return chosen, rejected


def only_one(values: list[float], item: EvalItem, what: str) -> float:
    """The single value of a list that must hold exactly one (e.g. the one chosen response's score)."""
    if len(values) != 1:
        raise ValueError(f"{item.key}: expected one {what} response, found {len(values)}")
    return values[0]
