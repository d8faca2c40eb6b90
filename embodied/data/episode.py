"""Episode: one demonstration, as arrays in memory, keyed the LeRobot way."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embodied.errors import InvalidEpisode

SOURCES = ("sim", "teleop", "deploy", "import")
STATE, ACTION, TIMESTAMP, IMAGE_PREFIX = "observation.state", "action", "timestamp", "observation.images."
ROLE_PIXELS_PREFIX = "label.role_pixels."  # + camera: where the instruction's objects are (a training label)
ROLES = ("target", "goal")  # rows of a role-pixels frame, as `sim_scenes.env.ROLES`


@dataclass
class Episode:
    """Per frame: state float32[T, n], action float32[T, m], timestamp float32[T] [s],
    images {camera: uint8[T, H, W, 3]}, and optionally role_pixels {camera: float32[T, 2, 2]}:
    the normalized image coordinates of the instruction's target and goal (NaN: unknown, or
    not in view), a label simulation knows and a policy may learn to predict. Per episode:
    task string, success, source, seed."""

    state: np.ndarray
    action: np.ndarray
    timestamp: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    task: str = ""
    success: bool = False
    source: str = "sim"
    seed: int = -1  # simulation seed that reproduces the episode (-1: none)
    role_pixels: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.action)

    def validate(self, state_dim: int | None = None, action_dim: int | None = None,
                 cameras: dict[str, tuple[int, int]] | None = None) -> None:
        """Raise InvalidEpisode naming the first problem; dims/cameras are the store's schema."""
        t = len(self.action)
        if t == 0:
            raise InvalidEpisode("episode has no frames; record at least one step before saving")
        for key, arr, dim in ((STATE, self.state, state_dim), (ACTION, self.action, action_dim)):
            if arr.ndim != 2 or len(arr) != t:
                raise InvalidEpisode(f"{key} has shape {arr.shape}, expected ({t}, n)")
            if dim is not None and arr.shape[1] != dim:
                raise InvalidEpisode(f"{key} has {arr.shape[1]} dimensions, the store expects {dim}")
            bad = ~np.isfinite(arr)
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise InvalidEpisode(f"{key} holds NaN or inf (first at frame {frame}); the episode was not saved. "
                                     "Fix the controller or drop the episode")
        if self.timestamp.shape != (t,) or np.any(np.diff(self.timestamp) <= 0):
            raise InvalidEpisode(f"timestamp must be strictly increasing with shape ({t},), found {self.timestamp.shape}")
        if self.source not in SOURCES:
            raise InvalidEpisode(f"unknown source {self.source!r}; use one of {SOURCES}")
        if cameras is not None and set(self.images) != set(cameras):
            raise InvalidEpisode(f"cameras {sorted(self.images)} differ from the store's {sorted(cameras)}")
        for cam, frames in self.images.items():
            if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != t or frames.shape[3] != 3:
                raise InvalidEpisode(f"{IMAGE_PREFIX}{cam} must be uint8[{t}, H, W, 3], found {frames.dtype}{list(frames.shape)}")
            if cameras is not None and tuple(frames.shape[1:3]) != tuple(cameras[cam]):
                raise InvalidEpisode(f"{IMAGE_PREFIX}{cam} is {frames.shape[1:3]}, the store expects {cameras[cam]}")
        for cam, xy in self.role_pixels.items():
            if cam not in self.images:
                raise InvalidEpisode(f"{ROLE_PIXELS_PREFIX}{cam} labels a camera the episode has no images of "
                                     f"({sorted(self.images)})")
            if xy.shape != (t, len(ROLES), 2):
                raise InvalidEpisode(f"{ROLE_PIXELS_PREFIX}{cam} must be float[{t}, {len(ROLES)}, 2], found "
                                     f"{list(xy.shape)}")
