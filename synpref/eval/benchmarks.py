"""Find and load the seven benchmarks from a config: local files first, the HF hub if allowed.

`load_benchmarks(paths, use_hub)` returns the EvalItems per benchmark and, apart, the benchmarks
that could not be found with the reason: an absent benchmark is reported, never a crash. A file
that is not benchmark data (other models' results, a README) is skipped with a printed line; a data
file that is present but malformed still raises, naming the file and the field (that is a bug to
fix, not a benchmark to skip).
"""

from __future__ import annotations

from pathlib import Path

from synpref.eval.headline import PAPER_BENCHMARKS
from synpref.eval.items import EvalItem
from synpref.eval.registry import BENCHMARKS

# Where each benchmark sits under a benchmarks root, in the layout of its official repo or hub
# export (../shared/benchmarks holds rm-bench/, judgebench/, rmb/; the fixtures hold all seven).
DEFAULT_PATHS = {
    "rewardbench": "rewardbench",
    "rewardbench2": "rewardbench2",
    "ppe_preference": "ppe/human_preference.jsonl",
    "ppe_correctness": "ppe",  # every *best_of_k* file, one correctness set each
    "rmb": "rmb",
    "rm_bench": "rm-bench",
    "judgebench": "judgebench/data",
}


def benchmark_paths(root: str | None, paths: dict[str, str]) -> dict[str, Path | None]:
    """Absolute path per benchmark: absolute entries as they are, relative ones under root."""
    out = {}
    for name in PAPER_BENCHMARKS:
        entry = paths.get(name, DEFAULT_PATHS[name])
        if entry is None:
            out[name] = None
        elif Path(entry).is_absolute():
            out[name] = Path(entry)
        else:
            out[name] = Path(root).expanduser().absolute() / entry if root else None
    return out


def load_benchmarks(paths: dict[str, Path | None], *, use_hub: bool = False,
                    only: list[str] | None = None) -> tuple[dict[str, list[EvalItem]], dict[str, str]]:
    """(items per benchmark present, reason per benchmark missing), in PAPER_BENCHMARKS order."""
    items: dict[str, list[EvalItem]] = {}
    missing: dict[str, str] = {}
    for name in PAPER_BENCHMARKS:
        if only and name not in only:
            continue
        path = paths.get(name)
        reason = "no path configured (set benchmarks.root or benchmarks.paths." + name + ")"
        if path is not None and path.exists():
            try:
                loaded = BENCHMARKS[name].load(path)
                if loaded:
                    items[name] = loaded
                    continue
                reason = f"no {name} items in the files at {path} (each was skipped as not its data)"
            except FileNotFoundError as error:  # a folder without the expected files
                reason = str(error)
        elif path is not None:
            reason = f"no files at {path}"
        load_hub = BENCHMARKS[name].load_hub
        if use_hub and load_hub is not None:
            try:
                items[name] = load_hub()
                continue
            except Exception as error:  # no network, no `datasets`, gated: the benchmark is absent here
                reason += f"; the HF hub failed too ({type(error).__name__}: {error})"
        missing[name] = reason
    return items, missing


def item_batches(items: list[EvalItem], max_responses: int) -> list[list[int]]:
    """Item indices grouped so a group holds at most max_responses responses (whole items only;
    an item with more responses than that is a group of its own)."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, item in enumerate(items):
        n = len(item.responses)
        if current and size + n > max_responses:
            batches.append(current)
            current, size = [], 0
        current.append(index)
        size += n
    if current:
        batches.append(current)
    return batches
