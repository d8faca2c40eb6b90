"""Whole-store operations: merge stores, filter or delete episodes.

Each writes a new store and leaves its inputs untouched, so no operation can lose data that
was already saved; replace the old store yourself once the new one looks right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from embodied.data.store import EpisodeStore
from embodied.errors import SchemaMismatch


def _create_like(out: Path, src: EpisodeStore) -> EpisodeStore:
    s = src.schema()
    return EpisodeStore.create(out, s["robot"], s["fps"], s["state_dim"], s["action_dim"], s["cameras"],
                               spec=src.attrs.get("spec"))


def merge(out: str | Path, sources: Iterable[str | Path]) -> EpisodeStore:
    """Concatenate stores of the same schema (robot, fps, dims, cameras) into `out`."""
    stores = [EpisodeStore.open(p) for p in sources]
    if not stores:
        raise SchemaMismatch("nothing to merge: give at least one store")
    first = stores[0]
    for s in stores[1:]:
        if s.schema() != first.schema():
            diff = {k: (first.schema()[k], s.schema()[k]) for k in first.schema() if first.schema()[k] != s.schema()[k]}
            raise SchemaMismatch(f"cannot merge {s.path} into {first.path}: they differ in {diff}; "
                                 "merge only stores of the same robot and cameras (the pooled loader mixes robots)")
    merged = _create_like(Path(out), first)
    for s in stores:
        for i in range(s.num_episodes):
            merged.append(s.episode(i))
    return merged


def filter_episodes(src: str | Path, out: str | Path, keep: Callable[[dict], bool]) -> EpisodeStore:
    """Copy the episodes whose metadata (index, length, success, task, source, seed) pass `keep`."""
    store = EpisodeStore.open(src)
    result = _create_like(Path(out), store)
    for i in range(store.num_episodes):
        if keep(store.episode_meta(i)):
            result.append(store.episode(i))
    return result
