"""Normalizer: per-robot normalization statistics kept with the policy (numpy only).

The training loader normalizes with `embodied.data.transforms.Normalize`; the policy keeps
the same statistics and mode so that `VLAPolicy.act` can normalize a raw observation and
bring predicted actions back to robot units with the inverse transform. The statistics are
saved in the checkpoint with a sha256 hash per robot.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np

from embodied.data.transforms import MODES, Normalize, NormStats, Unnormalize
from embodied.errors import InvalidInput, NoAdapter

KEYS = ("state", "actions")


class Normalizer:
    """Args:
        stats: robot -> {"state": NormStats, "actions": NormStats} (`PooledDataset.norm_stats`).
        mode: "mean_std", "quantile" or "none" (`PooledDataset.normalization`).
    """

    def __init__(self, stats: Mapping[str, Mapping[str, NormStats]] | None = None, mode: str = "mean_std"):
        if mode not in MODES:
            raise InvalidInput(f"unknown normalization {mode!r}; use one of {MODES}")
        self.mode = mode
        self.stats: dict[str, dict[str, NormStats]] = {}
        for robot, s in (stats or {}).items():
            self.set(robot, s)

    def set(self, robot: str, stats: Mapping[str, NormStats]) -> None:
        """Add or replace the statistics of one robot."""
        missing = [k for k in KEYS if k not in stats]
        if missing:
            raise InvalidInput(f"statistics of {robot} lack {missing}; found {sorted(stats)}")
        self.stats[robot] = {k: stats[k] for k in KEYS}

    def robot_dict(self, robot: str) -> dict[str, Any]:
        """Plain data of one robot's statistics (JSON-ready)."""
        return {k: self._get(robot)[k].to_dict() for k in KEYS}

    def robot_hash(self, robot: str) -> str:
        """sha256 of the robot's statistics and the mode (canonical JSON, float32 values)."""
        text = json.dumps({"mode": self.mode, **self.robot_dict(robot)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "robots": {r: self.robot_dict(r) for r in sorted(self.stats)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Normalizer":
        return cls({r: {k: NormStats.from_dict(s[k]) for k in KEYS} for r, s in d["robots"].items()}, d["mode"])

    def _get(self, robot: str) -> dict[str, NormStats]:
        if robot not in self.stats:
            raise NoAdapter(f"no normalization statistics for robot {robot!r}; the policy has {sorted(self.stats)}")
        return self.stats[robot]

    def normalize_state(self, robot: str, state: np.ndarray) -> np.ndarray:
        """Robot units float32[n] -> normalized float32[n]."""
        return Normalize({robot: self._get(robot)}, self.mode, ("state",))({"robot": robot, "state": state})["state"]

    def unnormalize_actions(self, robot: str, actions: np.ndarray) -> np.ndarray:
        """Normalized float32[H, m] -> robot units float32[H, m]."""
        out = Unnormalize({robot: self._get(robot)}, self.mode, ("actions",))({"robot": robot, "actions": actions})
        return np.asarray(out["actions"], np.float32)
