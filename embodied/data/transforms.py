"""Sample transforms: small frozen `dict -> dict` steps, openpi style.

A sample (see `embodied.data.loader.PooledDataset`) carries `robot`, `state` float32[n],
`actions` float32[H, m] and `images` {camera: uint8[h, w, 3]}. Input steps run in the
loader (normalize, augment); output steps invert them in reverse order on what the
policy predicts (`Unnormalize` mirrors `Normalize`).

Normalization modes:
    "mean_std": x -> (x - mean) / (std + eps)
    "quantile": x -> 2 (x - q01) / (q99 - q01 + eps) - 1   (maps [q01, q99] to [-1, 1])
    "none":     identity
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from embodied.data.episode import ACTION, STATE
from embodied.errors import DataError, SchemaMismatch

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]
MODES = ("mean_std", "quantile", "none")
EPS = 1e-6
# sample key -> statistics key of the store
STAT_KEYS = {"state": STATE, "actions": ACTION}


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-dimension statistics of one vector (state or action) of one robot."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    count: int = 0

    def __post_init__(self):
        dims = {np.shape(v) for v in (self.mean, self.std, self.q01, self.q99)}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise DataError(f"normalization statistics must be four vectors of one length, found shapes {sorted(dims)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NormStats":
        missing = [k for k in ("mean", "std", "q01", "q99") if k not in d]
        if missing:
            raise DataError(f"statistics lack {missing}; found {sorted(d)}. Recompute them with store.stats()")
        count = d.get("count", [0])
        return cls(*(np.asarray(d[k], np.float32) for k in ("mean", "std", "q01", "q99")),
                   count=int(count[0] if isinstance(count, (list, tuple)) and count else count or 0))

    @property
    def dim(self) -> int:
        return len(self.mean)

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "q01", "q99")} | {"count": self.count}

    @staticmethod
    def merge(parts: Sequence["NormStats"]) -> "NormStats":
        """Pool statistics of several stores of one robot: exact mean and std (from counts);
        q01/q99 as the count-weighted mean of the parts' quantiles (an approximation)."""
        if len({p.dim for p in parts}) != 1:
            raise SchemaMismatch(f"stores of one robot disagree on dimensions: {[p.dim for p in parts]}")
        if len(parts) == 1:
            return parts[0]
        w = np.array([max(p.count, 1) for p in parts], np.float64)
        w /= w.sum()
        mean = sum(wi * p.mean.astype(np.float64) for wi, p in zip(w, parts))
        second = sum(wi * (p.std.astype(np.float64) ** 2 + p.mean.astype(np.float64) ** 2) for wi, p in zip(w, parts))
        std = np.sqrt(np.maximum(second - mean**2, 0.0))
        q01 = sum(wi * p.q01 for wi, p in zip(w, parts))
        q99 = sum(wi * p.q99 for wi, p in zip(w, parts))
        return NormStats(*(np.asarray(v, np.float32) for v in (mean, std, q01, q99)), count=sum(p.count for p in parts))


RobotStats = Mapping[str, Mapping[str, NormStats]]  # robot -> sample key ("state"/"actions") -> stats


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise DataError(f"unknown normalization {mode!r}; use one of {MODES}")


def _lookup(stats: RobotStats, robot: str, key: str, dim: int) -> NormStats:
    if robot not in stats:
        raise DataError(f"no normalization statistics for robot {robot!r}; have {sorted(stats)}")
    s = stats[robot][key]
    if s.dim != dim:
        raise SchemaMismatch(f"{robot} {key} has {dim} dimensions, its statistics have {s.dim}")
    return s


# mode -> (normalize, unnormalize) of x with one robot's statistics s
_FORMULAS = {
    "mean_std": (lambda x, s: (x - s.mean) / (s.std + EPS),
                 lambda x, s: x * (s.std + EPS) + s.mean),
    "quantile": (lambda x, s: 2.0 * (x - s.q01) / (s.q99 - s.q01 + EPS) - 1.0,
                 lambda x, s: (x + 1.0) * 0.5 * (s.q99 - s.q01 + EPS) + s.q01),
}


def _apply(sample: Sample, stats: RobotStats, mode: str, keys: tuple[str, ...], inverse: bool) -> Sample:
    if mode == "none":
        return sample
    fn = _FORMULAS[mode][int(inverse)]
    out = dict(sample)
    for key in keys:
        if key in out:
            x = np.asarray(out[key], np.float32)
            out[key] = fn(x, _lookup(stats, out["robot"], key, x.shape[-1]))
    return out


@dataclass(frozen=True, eq=False)
class Normalize:
    """Normalize `state` and `actions` with the sample's robot statistics."""

    stats: RobotStats
    mode: str = "mean_std"
    keys: tuple[str, ...] = ("state", "actions")

    def __post_init__(self):
        _check_mode(self.mode)

    def __call__(self, sample: Sample) -> Sample:
        return _apply(sample, self.stats, self.mode, self.keys, inverse=False)


@dataclass(frozen=True, eq=False)
class Unnormalize:
    """Inverse of `Normalize` (same statistics and mode): policy outputs back to robot units."""

    stats: RobotStats
    mode: str = "mean_std"
    keys: tuple[str, ...] = ("actions",)

    def __post_init__(self):
        _check_mode(self.mode)

    def __call__(self, sample: Sample) -> Sample:
        return _apply(sample, self.stats, self.mode, self.keys, inverse=True)


@dataclass(frozen=True)
class ImageAugment:
    """Random shift (pad by `shift_px` with edge pixels, crop back at a random offset) and
    brightness/contrast jitter, per camera. Randomness comes from `sample["seed"]` alone,
    so a sample augments the same way in any worker; shapes and dtype (uint8) are kept.
    Role-pixel labels (normalized image coordinates) shift with their camera's image, and
    `image_shift` {camera: float32[2]} records how far each image's content moved (normalized
    image coordinates), so a consumer can take the shift back out of what it locates
    (`VLAPolicy` does for the keypoint positions the action pathway reads: the actions do not
    move with the image)."""

    shift_px: int = 4
    brightness: float = 0.1  # additive, as a fraction of 255
    contrast: float = 0.1  # multiplicative around the image mean

    def __post_init__(self):
        if self.shift_px < 0 or self.brightness < 0 or self.contrast < 0:
            raise DataError(f"augmentation amounts must be >= 0, found {self}")

    def __call__(self, sample: Sample) -> Sample:
        rng = np.random.default_rng(sample.get("seed", 0))
        images, labels, shifts = {}, dict(sample.get("role_pixels", {})), {}
        for cam, img in sample["images"].items():
            h, w = img.shape[:2]
            p = self.shift_px
            if p:
                dy, dx = rng.integers(0, 2 * p + 1, size=2)
                img = np.pad(img, ((p, p), (p, p), (0, 0)), mode="edge")[dy:dy + h, dx:dx + w]
                # the content moved by (p - dx, p - dy) pixels
                shifts[cam] = np.array([2.0 * (p - dx) / w, 2.0 * (p - dy) / h], np.float32)
                if cam in labels:
                    labels[cam] = labels[cam] + shifts[cam]
            c = 1.0 + rng.uniform(-self.contrast, self.contrast)
            b = 255.0 * rng.uniform(-self.brightness, self.brightness)
            x = img.astype(np.float32)
            x = (x - x.mean()) * c + x.mean() + b
            images[cam] = np.clip(x + 0.5, 0, 255).astype(np.uint8)
        return {**sample, "images": images, **({"role_pixels": labels} if labels else {}),
                **({"image_shift": shifts} if shifts else {})}


@dataclass(frozen=True)
class StateNoise:
    """Gaussian noise of `std` on the (normalized) proprioception, seeded by `sample["seed"]`
    like `ImageAugment`. Makes the state a blurred cue, so a policy trained on few
    demonstrations leans less on where the arm already is ("copycat" behaviour: continuing
    the demonstration whose states it recognises) and more on what the cameras show."""

    std: float

    def __post_init__(self):
        if not self.std >= 0:
            raise DataError(f"state noise must be >= 0 (normalized units), found {self.std}")

    def __call__(self, sample: Sample) -> Sample:
        rng = np.random.default_rng([sample.get("seed", 0), 1])  # a stream apart from ImageAugment's
        state = np.asarray(sample["state"], np.float32)
        return {**sample, "state": state + rng.normal(0.0, self.std, state.shape).astype(np.float32)}


@dataclass(frozen=True)
class ResizeImages:
    """Nearest-neighbour resize of every camera to (height, width), so robots whose cameras
    differ in resolution can share a batch (role-pixel labels, in normalized image
    coordinates, stay valid)."""

    height: int
    width: int

    def __call__(self, sample: Sample) -> Sample:
        images = {}
        for cam, img in sample["images"].items():
            h, w = img.shape[:2]
            if (h, w) != (self.height, self.width):
                rows = (np.arange(self.height) * h // self.height)[:, None]
                cols = (np.arange(self.width) * w // self.width)[None, :]
                img = img[rows, cols]
            images[cam] = img
        return {**sample, "images": images}


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: tuple[Transform, ...] = field(default_factory=tuple)

    def __call__(self, sample: Sample) -> Sample:
        for t in self.transforms:
            sample = t(sample)
        return sample
