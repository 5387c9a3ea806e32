"""Hugging Face hub datasets as input, named the hub's own way: `hf://datasets/<org>/<name>[@<revision>][/<path>]`.

Which files that names is decided as the hub lays datasets out:
  1. a path in the URI (a folder, file or glob in the repo): the data files it names;
  2. else the README's YAML `configs:` (`data_files` as one pattern, a list, or `{split, path}` entries; or
     `data_dir`): the config named by `config`, else the README's default one, else the only one;
  3. else the data files under the top-level folder named `config`, or the whole repo.
In 1 and 3 a file's split is its name up to the first "-" or "." (`data/train-00000-of-00002.parquet`,
`helpful-base/test.jsonl.gz`), or its folder's name for numbered shards (`default/train/0000.parquet` on
the `refs/convert/parquet` branch, `@~parquet` for short). `split` picks one; without it, the only split,
else `train`.

The files come through huggingface_hub.snapshot_download into the synpref cache (`$SYNPREF_CACHE/hub`, in
the layout huggingface_hub writes, so what is there is reused): the README first, then only the chosen
files. With HF_HUB_OFFLINE=1 only the cache is looked at. Ray then reads local files, so on a multi-node
cluster SYNPREF_CACHE must be on storage every node sees. A local copy (`hf download --repo-type dataset
<org>/<name> --local-dir X`) is read by the same rules (`copy_files`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from urllib.parse import unquote

from synpref.rm.cache import default_cache_dir
from synpref.runner.errors import BadConfig

DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz", ".json.gz")  # what readers.py reads
URI_SHAPE = "hf://datasets/<org>/<name>[@<revision>][/<path in the repo>]"
REVISION_ALIASES = {"~parquet": "refs/convert/parquet"}
NETWORK_MODULES = ("httpx", "httpx2", "requests", "urllib3")  # their errors mean the hub could not be reached
_URI = re.compile(r"hf://datasets/([^/@]+/[^/@]+)(?:@(refs/convert/parquet|refs/pr/\d+|[^/]+))?(?:/(.*))?")


def is_hub_uri(value) -> bool:
    return str(value).startswith("hf://")


def parse_hub_uri(uri: str, key: str = "data.input") -> tuple[str, str | None, str]:
    """(repo id, revision or None, path in the repo or "") of a hub dataset URI."""
    match = _URI.fullmatch(uri)
    if not match:
        raise BadConfig([f"{key}={uri}: a hub dataset is named {URI_SHAPE}"])
    repo_id, revision, path = match.groups()
    revision = unquote(revision) if revision else None  # the hub's URIs write refs/convert/parquet escaped
    return repo_id, REVISION_ALIASES.get(revision, revision), (path or "").strip("/")


def is_hub_copy(folder: str) -> bool:
    """A local folder laid out as a hub dataset repo: it holds a README.md with the hub's YAML header."""
    import yaml

    readme = os.path.join(folder, "README.md")
    try:
        return "://" not in folder and os.path.isfile(readme) and dataset_card(readme) is not None
    except (ValueError, yaml.YAMLError):  # a README of one's own, not a dataset card
        return False


def dataset_card(readme: str) -> dict | None:
    from huggingface_hub.repocard import metadata_load

    return metadata_load(readme) if os.path.isfile(readme) else None


def _pattern_regex(pattern: str) -> re.Pattern:
    # the hub's data_files globs: "*" and "?" stay within a folder, "**" crosses folders
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/"))
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts))


def split_of(name: str) -> str:
    parts = name.split("/")
    stem = re.split(r"[-.]", parts[-1], maxsplit=1)[0]
    return parts[-2] if stem.isdigit() and len(parts) > 1 else stem


def _by_split(names) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    for name in names:
        splits.setdefault(split_of(name), []).append(name)
    return splits


def _card_configs(card: dict | None) -> tuple[dict[str, dict], str | None]:
    """{config name: its README entry} and the default config's name."""
    configs = {str(entry.get("config_name", "default")): entry for entry in (card or {}).get("configs") or []}
    default = next((name for name, entry in configs.items() if entry.get("default")), None)
    return configs, default


def _config_splits(entry: dict, names: list[str], data: list[str]) -> dict[str, list[str]]:
    files = entry.get("data_files")
    if files is None:  # `data_dir` only: the default layout under that folder
        folder = str(entry.get("data_dir", "")).strip("/")
        return _by_split(n for n in data if not folder or n.startswith(folder + "/"))
    if isinstance(files, dict):
        patterns = {str(split): files[split] for split in files}
    elif isinstance(files, list) and files and isinstance(files[0], dict):
        patterns = {str(item.get("split", "train")): item.get("path", []) for item in files}
    else:
        patterns = {"train": files}
    splits = {}
    for split, globs in patterns.items():
        regexes = [_pattern_regex(g) for g in ([globs] if isinstance(globs, str) else globs)]
        splits[split] = [n for n in names if any(r.fullmatch(n) for r in regexes)]
    return splits


def choose_files(names: list[str], card: dict | None, *, path: str = "", config: str | None = None,
                 split: str | None = None, where: str) -> tuple[list[str], str, str]:
    """(files, config, split): the files of a repo (all its `names`) that config and split name."""
    data = sorted(n for n in names if n.endswith(DATA_SUFFIXES) and not n.startswith(".") and "/." not in n)
    configs, default = _card_configs(card)
    if path:
        if config:
            raise BadConfig([f"{where}: name a path in the repo or data.hub.config={config}, not both"])
        regex = _pattern_regex(path)
        splits, config = _by_split(n for n in data if regex.fullmatch(n) or n.startswith(path + "/")), path
    elif configs:
        config = config or default or (next(iter(configs)) if len(configs) == 1 else None)
        if config not in configs:
            choice = f"there is no config {config!r}" if config else "there are several configs and none is the default"
            raise BadConfig([f"{where}: {choice}; choose one of {', '.join(configs)} with data.hub.config=<name>"])
        splits = _config_splits(configs[config], names, data)
    elif config:
        splits = _by_split(n for n in data if n.startswith(config + "/"))
        folders = sorted({n.split("/")[0] for n in data if "/" in n})
        if not splits:
            raise BadConfig([f"{where}: no data files under {config}/ "
                             f"(folders with data: {', '.join(folders) or 'none'})"])
    else:
        splits, config = _by_split(data), "default"
    found = sorted(s for s, files in splits.items() if files)
    if not found:
        raise BadConfig([f"{where}: no data files ({', '.join(DATA_SUFFIXES)}) in config {config}"])
    if split is None:
        split = found[0] if len(found) == 1 else "train" if "train" in found else None
        if split is None:
            raise BadConfig([f"{where}: config {config} has the splits {', '.join(found)}: "
                             "choose one with data.hub.split=<name>"])
    elif split not in found:
        raise BadConfig([f"{where}: config {config} has no split {split!r}; its splits: {', '.join(found)}"])
    return sorted(splits[split]), config, split


def copy_files(folder: str, *, config: str | None = None, split: str | None = None,
               key: str = "data.input") -> list[str]:
    """The files of a local copy of a hub dataset repo (a folder holding its README.md), by the hub's rules."""
    folder = os.path.abspath(folder)
    card = dataset_card(os.path.join(folder, "README.md"))
    files, config, split = choose_files(_files_under(folder), card, config=config, split=split, where=f"{key}={folder}")
    print(f"{folder}: config {config}, split {split}: {len(files)} files")
    return [os.path.join(folder, f) for f in files]


def hub_dataset_files(uri: str, *, config: str | None = None, split: str | None = None,
                      cache_dir: str | None = None, key: str = "data.input") -> list[str]:
    """Local paths of the files `uri` names for config and split, downloaded into the cache if need be."""
    import huggingface_hub
    from huggingface_hub import errors

    repo_id, revision, path = parse_hub_uri(uri, key)
    cache = cache_dir or os.path.join(default_cache_dir(), "hub")
    offline = hub_offline()

    def fetch(patterns: list[str], at: str | None, local_only: bool) -> str:
        return huggingface_hub.snapshot_download(repo_id, repo_type="dataset", revision=at, cache_dir=cache,
                                                 allow_patterns=patterns, local_files_only=local_only)

    with _hub_errors(uri, repo_id, revision, cache, offline, key):
        folder = fetch(["README.md"], revision, offline)
        commit = os.path.basename(folder)  # snapshots/<commit>: the second call pins the same commit
        listing = _repo_listing(repo_id, commit, cache, offline)
        # without a listing the hub was not reached: the files on disk are all there is (and asking the hub
        # again would only wait through its retries)
        names = listing if listing is not None else _files_under(folder)
        files, config, split = choose_files(names, dataset_card(os.path.join(folder, "README.md")), path=path,
                                            config=config, split=split, where=f"{key}={uri}")
        folder = fetch([glob.escape(f) for f in files], commit, offline or listing is None)
        missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise errors.LocalEntryNotFoundError(f"{len(missing)} files are not in the cache ({missing[0]}, ...)")
    print(f"{uri}: config {config}, split {split}: {len(files)} files at commit {commit[:12]} in {cache}")
    return [os.path.join(folder, f) for f in files]


def _files_under(folder: str) -> list[str]:
    return [os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs]


def hub_offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: read the environment as it is now
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _repo_listing(repo_id: str, commit: str, cache: str, offline: bool) -> list[str] | None:
    """Every file of the repo at commit, as snapshot_download listed it; None where it could not list the repo
    (offline, the hub unreachable, or a cache laid out without a listing)."""
    import huggingface_hub
    from huggingface_hub import errors

    cached_tree = getattr(huggingface_hub, "get_cached_repo_tree", None)  # huggingface_hub >= 2
    if cached_tree is None:  # an older huggingface_hub keeps no listing: ask the hub
        return None if offline else huggingface_hub.HfApi().list_repo_files(repo_id, repo_type="dataset",
                                                                            revision=commit)
    with contextlib.suppress(errors.CachedRepoTreeNotFoundError):
        return [f.path for f in cached_tree(repo_id, repo_type="dataset", revision=commit, cache_dir=cache)]
    return None


@contextlib.contextmanager
def _hub_errors(uri, repo_id, revision, cache, offline, key):
    """huggingface_hub's errors as one BadConfig line naming the dataset and how to pass a local copy."""
    from huggingface_hub import errors

    at = f" --revision {revision}" if revision else ""
    local_copy = (f"pass a local copy instead: where there is network run "
                  f"`hf download --repo-type dataset {repo_id}{at} --local-dir DIR` (or save_to_disk a "
                  f"datasets.load_dataset of it into DIR), bring DIR here and set {key}=DIR, or put that download "
                  f"in this cache with --cache-dir {cache}")
    try:
        yield
    except errors.HFValidationError as e:
        raise BadConfig([f"{key}={uri}: {repo_id!r} is not a hub dataset id ({e})"]) from e
    except errors.RevisionNotFoundError as e:
        raise BadConfig([f"{key}={uri}: hub dataset {repo_id} has no revision {revision!r}"]) from e
    except errors.RepositoryNotFoundError as e:  # gated and private repositories too
        raise BadConfig([f"{key}={uri}: hub dataset {repo_id} not found or not accessible ({type(e).__name__}; "
                         f"a gated or private one needs `hf auth login`); or {local_copy}"]) from e
    except errors.LocalEntryNotFoundError as e:
        why = "offline (HF_HUB_OFFLINE=1)" if offline else "the hub could not be reached"
        raise BadConfig([f"{key}={uri}: cannot get hub dataset {repo_id}: {why} and the cache {cache} does not hold "
                         f"its files. To read it, {local_copy}"]) from e
    except Exception as e:
        if not isinstance(e, OSError) and type(e).__module__.split(".")[0] not in NETWORK_MODULES:
            raise
        raise BadConfig([f"{key}={uri}: cannot get hub dataset {repo_id} ({type(e).__name__}: {e}). To read it, "
                         f"{local_copy}"]) from e
