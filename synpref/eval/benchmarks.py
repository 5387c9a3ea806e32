"""Find and load the seven benchmarks from a config: local files first, the HF hub if allowed.

`load_benchmarks(paths, use_hub)` returns the EvalItems per benchmark and, apart, the benchmarks
that could not be found with the reason: an absent benchmark is reported, never a crash. A file
that is present but malformed still raises (that is a bug to fix, not a benchmark to skip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from synpref.eval import loaders
from synpref.eval.loaders import EvalItem
from synpref.eval.headline import PAPER_BENCHMARKS

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

HUB_LOADERS: dict[str, Callable[[], list[EvalItem]]] = {
    "rewardbench": lambda: loaders.load_rewardbench(hub_id=loaders.HUB_IDS["rewardbench"]),
    "rewardbench2": lambda: loaders.load_rewardbench2(hub_id=loaders.HUB_IDS["rewardbench2"]),
    "ppe_preference": lambda: loaders.load_ppe_preference(hub_id=loaders.HUB_IDS["ppe_preference"]),
    "ppe_correctness": lambda: [item for hub_id in loaders.PPE_CORRECTNESS_HUB_IDS.values()
                                for item in loaders.load_ppe_correctness(hub_id=hub_id)],
}


def _ppe_correctness(path: Path) -> list[EvalItem]:
    files = loaders.data_files(path, pattern="*best_of_k*") if path.is_dir() else [path]
    return [item for file in files for item in loaders.load_ppe_correctness(file)]


LOCAL_LOADERS: dict[str, Callable[[Path], list[EvalItem]]] = {
    "rewardbench": loaders.load_rewardbench,
    "rewardbench2": loaders.load_rewardbench2,
    "ppe_preference": loaders.load_ppe_preference,
    "ppe_correctness": _ppe_correctness,
    "rmb": loaders.load_rmb,
    "rm_bench": loaders.load_rm_bench,
    "judgebench": loaders.load_judgebench,
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
                items[name] = LOCAL_LOADERS[name](path)
                continue
            except FileNotFoundError as error:  # a folder without the expected files
                reason = str(error)
        elif path is not None:
            reason = f"no files at {path}"
        if use_hub and name in HUB_LOADERS:
            try:
                items[name] = HUB_LOADERS[name]()
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
