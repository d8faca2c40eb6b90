"""The first N episodes of a dataset, as a FrameSource of their own.

Data-scaling curves (5 / 10 / 20 / 50 demonstrations of a new arm) and per-robot
comparisons at a fixed number of demonstrations train on prefixes of one recorded dataset
instead of separately generated copies: the 20-demonstration run sees exactly the first 20
episodes the 50-demonstration run sees. Normalization statistics are those of the prefix,
as if the dataset held only those episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embodied.data.episode import ACTION, STATE
from embodied.data.stats import compute_stats
from embodied.errors import DataError


class FirstEpisodes:
    """Frames of episodes 0..n-1 of `source` (any FrameSource), read-only.

    Raises:
        DataError: n < 1, or the source holds fewer than n committed episodes.
    """

    def __init__(self, source: Any, n: int):
        have = len(source.episode_ends)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataError(f"{source.path}: the number of episodes to use must be a positive integer, found {n!r}")
        if n > have:
            raise DataError(f"{source.path} holds {have} committed episodes, {n} were asked for; record or "
                            f"generate more (`embodied simgen ... --episodes {n} --out {source.path}` continues it) "
                            f"or ask for at most {have}")
        self.source, self.n = source, n
        self.path = source.path
        self.episode_ends = np.asarray(source.episode_ends[:n], np.int64)
        self._stats: dict[str, dict[str, list[float]]] | None = None

    def __repr__(self) -> str:
        return f"FirstEpisodes({self.path}, {self.n})"

    @property
    def robot(self) -> str:
        return self.source.robot

    @property
    def attrs(self) -> dict[str, Any]:
        return getattr(self.source, "attrs", {})

    @property
    def fps(self) -> float:
        return self.source.fps

    @property
    def cameras(self) -> dict[str, tuple[int, int]]:
        return self.source.cameras

    @property
    def role_pixel_cameras(self) -> list[str]:
        return list(getattr(self.source, "role_pixel_cameras", ()))

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1])

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.num_frames:
            raise IndexError(f"frames [{start}, {stop}) are outside the first {self.n} episodes of {self.path} "
                             f"({self.num_frames} frames)")
        return self.source.read(key, start, stop)

    def array(self, key: str) -> Any:
        """The underlying storage array (its chunk geometry tells loaders what one read costs)."""
        return self.source.array(key)

    def episode_meta(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(f"episode {i} is outside the first {self.n} episodes of {self.path}")
        return self.source.episode_meta(i)

    def stats(self) -> dict[str, dict[str, list[float]]]:
        if self._stats is None:
            n = self.num_frames
            self._stats = {STATE: compute_stats(self.source.read(STATE, 0, n)),
                           ACTION: compute_stats(self.source.read(ACTION, 0, n))}
        return self._stats
