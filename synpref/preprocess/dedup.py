"""The global dedup state: the set of 64-bit pair keys seen so far.

This is the only state of pre-processing that grows with the input: 8 bytes per distinct pair, held
as a few sorted numpy arrays (a log-structured merge: a new batch of keys becomes a small sorted run,
runs of similar size are merged), so a lookup is a handful of binary searches and the memory is the
keys themselves plus one transient merge. At 40M pairs that is 320 MB, on one actor or split over
`shards` actors by key.
"""

from __future__ import annotations

import numpy as np


class SeenKeys:
    def __init__(self):
        self.runs: list[np.ndarray] = []  # sorted, disjoint uint64 arrays, largest first

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Record keys; True where a key is seen for the first time (its first position in `keys`)."""
        keys = np.asarray(keys, dtype=np.uint64)
        unique, first_index = np.unique(keys, return_index=True)
        seen_before = np.zeros(len(unique), dtype=bool)
        for run in self.runs:
            pos = np.searchsorted(run, unique)
            hit = pos < len(run)
            hit[hit] = run[pos[hit]] == unique[hit]
            seen_before |= hit
        fresh = unique[~seen_before]
        is_first = np.zeros(len(keys), dtype=bool)
        is_first[first_index[~seen_before]] = True
        if len(fresh):
            self.runs.append(fresh)
            # merge while the newest run is at least half the size of the one before it
            while len(self.runs) > 1 and len(self.runs[-1]) * 2 >= len(self.runs[-2]):
                newer, older = self.runs.pop(), self.runs.pop()
                self.runs.append(np.sort(np.concatenate([older, newer]), kind="stable"))
        return is_first

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)


class ShardedSeenKeys:
    """SeenKeys split over Ray actors by key modulo the shard count; same `add` as SeenKeys."""

    def __init__(self, shards: int = 1):
        import ray

        actor_class = ray.remote(num_cpus=0)(SeenKeysActor)
        self.actors = [actor_class.remote() for _ in range(shards)]

    def add(self, keys: np.ndarray) -> np.ndarray:
        import ray

        keys = np.asarray(keys, dtype=np.uint64)
        shard_of = keys % np.uint64(len(self.actors))
        is_first = np.zeros(len(keys), dtype=bool)
        positions = [np.flatnonzero(shard_of == s) for s in range(len(self.actors))]
        answers = ray.get([actor.add.remote(keys[pos]) for actor, pos in zip(self.actors, positions)])
        for pos, answer in zip(positions, answers):
            is_first[pos] = answer
        return is_first

    def sizes(self) -> list[dict]:
        import ray

        return ray.get([actor.size.remote() for actor in self.actors])


class SeenKeysActor(SeenKeys):
    def size(self) -> dict:
        return {"keys": len(self), "bytes": self.nbytes}
