"""FrameSource: what a loader needs from a dataset, whatever its format on disk.

`EpisodeStore` (zarr) implements it; so does the LeRobot v3 reader, which decodes mp4
frames. Loaders and benchmarks are written against this protocol only.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class FrameSource(Protocol):
    path: Any
    episode_ends: np.ndarray  # int64[E], exclusive end frame of each episode

    @property
    def robot(self) -> str: ...

    @property
    def fps(self) -> float: ...

    @property
    def cameras(self) -> dict[str, tuple[int, int]]: ...  # name -> (height, width)

    @property
    def num_frames(self) -> int: ...

    def read(self, key: str, start: int, stop: int) -> np.ndarray: ...

    def episode_meta(self, i: int) -> dict[str, Any]: ...  # index, length, success, task, source, seed

    def stats(self) -> dict[str, dict[str, list[float]]]: ...  # {"observation.state"|"action": {mean, std, q01, q99, ...}}


def sim_task(source: Any) -> str | None:
    """The simulated task a dataset demonstrates: the attribute `sim_task` that `embodied simgen`
    records in its store; None for recorded, imported or older data."""
    task = getattr(source, "attrs", {}).get("sim_task")
    return str(task) if task else None
