"""PooledDataset: one map-style torch Dataset over the FrameSources of many robots.

A sample (index = one frame of one source) is::

    robot        str                   the source's robot
    instruction  str                   the episode's task string
    state        float32[n]            observation.state at frame t (normalized)
    images       {camera: uint8[h, w, 3]}
    cameras      list[str]             this robot's cameras, in store order
    actions      float32[H, m]         action chunk t .. t+H-1 (normalized; with relative_actions
                                       the joint targets minus the joint positions at t); past
                                       the episode end the last action is repeated ...
    action_valid bool[H]               ... and marked False here
    source, episode, frame             int: dataset index, episode index, frame in episode
    index                              int: the sample's index in this dataset
    seed         int                   drives random transforms (augmentation)
    role_pixels  {camera: float32[2, 2]}   where the instruction's target and goal are in each
                                       camera (normalized image coordinates, NaN: unknown); only
                                       from sources that record them (`EpisodeStore.role_pixel_cameras`)

Reading: state and action columns of every source are read into memory once (a few
bytes per frame); images stay on disk and are read one storage chunk at a time (all
frames of a chunk decode together) into a per-process LRU cache bounded in MB. Pair it
with `ChunkBatchSampler`, which visits frames chunk-window by chunk-window, so each
decoded chunk serves many samples. `Collate` pads mixed robots into one batch.

Keys may be an int (the frame index) or `(index, seed)` as the samplers yield them.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch

from embodied.data.episode import ACTION, IMAGE_PREFIX, ROLE_PIXELS_PREFIX, STATE
from embodied.data.transforms import MODES, Compose, ImageAugment, Normalize, NormStats, Transform, Unnormalize
from embodied.errors import DataError, SchemaMismatch
from embodied.policy.io import relative_to_state

DEFAULT_CHUNK = 64  # frames per image read for sources that do not say their chunking


def chunk_frames(source: Any, camera: str) -> int:
    """Frames per storage chunk of a camera: what one read should fetch."""
    n = getattr(source, "chunk_frames", None)
    if isinstance(n, int) and n > 0:
        return n
    if hasattr(source, "array"):
        try:
            return int(source.array(IMAGE_PREFIX + camera).chunks[0])
        except (KeyError, AttributeError, TypeError):
            pass
    return DEFAULT_CHUNK


class ChunkCache:
    """LRU cache of decoded image chunks, bounded in bytes (one per process)."""

    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 2**20)
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.bytes = self.hits = self.misses = 0

    def get(self, key: tuple, load) -> np.ndarray:
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return arr
        self.misses += 1
        arr = load()
        self._items[key] = arr
        self.bytes += arr.nbytes
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes
        return arr


class _Columns:
    """In-memory state/action (and role-pixel labels) of one source, and its episode boundaries."""

    def __init__(self, source: Any):
        n = int(source.num_frames)
        self.state = np.ascontiguousarray(source.read(STATE, 0, n), np.float32)
        self.action = np.ascontiguousarray(source.read(ACTION, 0, n), np.float32)
        self.ends = np.asarray(source.episode_ends, np.int64)
        self.starts = np.concatenate([[0], self.ends[:-1]]).astype(np.int64)
        self.ends_list, self.starts_list = self.ends.tolist(), self.starts.tolist()  # fast scalar bisect
        self.num_frames = n
        self.role_pixels = {c: np.ascontiguousarray(source.read(ROLE_PIXELS_PREFIX + c, 0, n), np.float32)
                            for c in getattr(source, "role_pixel_cameras", ())}
        if self.state.ndim != 2 or self.action.ndim != 2 or len(self.state) != n or len(self.action) != n:
            raise SchemaMismatch(f"{source.path}: state {self.state.shape} / action {self.action.shape} do not "
                                 f"match {n} frames")


class PooledDataset(torch.utils.data.Dataset):
    """Frames of several sources (different robots allowed) as one indexable dataset.

    Args:
        sources: FrameSources (EpisodeStore, LeRobotSource, ...).
        horizon: action chunk length H [frames].
        normalization: "mean_std", "quantile" or "none"; statistics per robot, pooled over
            that robot's sources (`norm_stats`).
        augment: optional `ImageAugment` applied after normalization.
        transforms: extra transforms applied last (e.g. `ResizeImages`).
        cache_mb: bound of the decoded-image cache of each process [MiB].
        seed: seed of augmentation for plain integer keys.
        imitate: per source, whether its actions are imitated (None: all). A source marked
            False is grounding data: its samples' `action_valid` is all False (no action
            loss), so only their images and role-pixel labels train; normalization statistics
            come from the imitated sources alone.
        relative_actions: the chunks' joint targets are relative to the frame's joint positions
            (`embodied.policy.io.relative_to_state`), and the action statistics are those of
            such chunks (every valid step of every frame's chunk), not of single frames.
    """

    def __init__(self, sources: Sequence[Any], horizon: int = 16, normalization: str = "mean_std",
                 augment: ImageAugment | None = None, transforms: Sequence[Transform] = (),
                 cache_mb: float = 64.0, seed: int = 0, imitate: Sequence[bool] | None = None,
                 relative_actions: bool = False):
        if not sources:
            raise DataError("PooledDataset needs at least one source")
        self.imitate = [True] * len(sources) if imitate is None else [bool(x) for x in imitate]
        if len(self.imitate) != len(sources):
            raise DataError(f"imitate has {len(self.imitate)} entries for {len(sources)} sources")
        if horizon < 1:
            raise DataError(f"horizon must be >= 1, found {horizon}")
        if normalization not in MODES:
            raise DataError(f"unknown normalization {normalization!r}; use one of {MODES}")
        self.sources, self.horizon, self.normalization = list(sources), int(horizon), normalization
        self.seed, self.cache_mb = int(seed), float(cache_mb)
        self.relative_actions = bool(relative_actions)
        self._cols = [_Columns(s) for s in self.sources]
        sizes = [c.num_frames for c in self._cols]
        if min(sizes) == 0:
            empty = [str(s.path) for s, n in zip(self.sources, sizes) if n == 0]
            raise DataError(f"sources without committed frames: {empty}; drop them from the mixture")
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._offsets_list = self.offsets.tolist()
        self.robots = [s.robot for s in self.sources]
        self.cameras = [list(s.cameras) for s in self.sources]
        self.camera_slots = list(dict.fromkeys(c for cams in self.cameras for c in cams))
        self._chunk = [{c: chunk_frames(s, c) for c in cams} for s, cams in zip(self.sources, self.cameras)]
        self.norm_stats = self._robot_stats()
        # Normalize broadcasts over leading dimensions: it runs once over the in-memory
        # columns here instead of once per sample (same transform, same numbers).
        self.input_transform = Normalize(self.norm_stats, normalization)
        for robot, cols in zip(self.robots, self._cols):
            out = self.input_transform({"robot": robot, "state": cols.state, "actions": cols.action})
            cols.state_n, cols.action_n = (np.ascontiguousarray(out[k], np.float32) for k in ("state", "actions"))
        self._normalize_actions = Normalize(self.norm_stats, normalization, ("actions",))
        self.transform = Compose((augment, *transforms) if augment is not None else tuple(transforms))
        self._tasks: list[dict[int, str]] = [{} for _ in self.sources]
        self._cache: ChunkCache | None = None
        self._images: dict[tuple[int, str], np.ndarray] = {}  # filled by preload()

    # --- structure ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets[-1])

    def source_frames(self, i: int) -> int:
        return self._cols[i].num_frames

    def chunk_size(self, i: int) -> int:
        """Frames per image chunk of source i (the largest over its cameras)."""
        return max(self._chunk[i].values(), default=DEFAULT_CHUNK)

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (source index, frame in source)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range: the dataset has {len(self)} frames")
        s = bisect.bisect_right(self._offsets_list, index) - 1
        return s, index - self._offsets_list[s]

    def _robot_stats(self) -> dict[str, dict[str, NormStats]]:
        per_robot: dict[str, list[dict]] = {}
        for src, imitated in zip(self.sources, self.imitate):
            if imitated:
                per_robot.setdefault(src.robot, []).append(src.stats())
        unimitated = sorted(set(self.robots) - set(per_robot))
        if unimitated:
            raise DataError(f"robots {unimitated} have only grounding data (actions not imitated); add "
                            "demonstrations of them (--data) for their actions and statistics")
        out = {}
        for robot, parts in per_robot.items():
            try:
                out[robot] = {"state": NormStats.merge([NormStats.from_dict(p[STATE]) for p in parts]),
                              "actions": (self._relative_chunk_stats(robot) if self.relative_actions else
                                          NormStats.merge([NormStats.from_dict(p[ACTION]) for p in parts]))}
            except KeyError as e:
                raise DataError(f"robot {robot}: a source has no {e} statistics") from e
            except SchemaMismatch as e:
                raise SchemaMismatch(f"robot {robot}: {e}") from e
        return out

    def _relative_chunk_stats(self, robot: str) -> NormStats:
        """Statistics of the relative chunks the robot's imitated sources give: every step k < H
        of every frame's chunk that lies inside its episode."""
        steps = []
        for cols, src_robot, imitated in zip(self._cols, self.robots, self.imitate):
            if src_robot != robot or not imitated:
                continue
            frames = np.arange(cols.num_frames)
            end = np.repeat(cols.ends, cols.ends - cols.starts)  # episode end of each frame
            for k in range(self.horizon):
                t = frames[frames + k < end]
                steps.append(relative_to_state(cols.action[t + k][:, None], cols.state[t])[:, 0])
        x = np.concatenate(steps).astype(np.float64)
        return NormStats(*(np.asarray(v, np.float32) for v in
                           (x.mean(0), x.std(0), np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0))),
                         count=len(x))

    def output_transform(self) -> Transform:
        """Policy output (normalized `actions` with `robot`, and the `state` in robot units the
        chunk started from) -> robot units."""
        unnormalize = Unnormalize(self.norm_stats, self.normalization)
        if not self.relative_actions:
            return unnormalize

        def absolute(sample: dict[str, Any]) -> dict[str, Any]:
            return {**sample, "actions": relative_to_state(sample["actions"], sample["state"], inverse=True)}
        return Compose((unnormalize, absolute))

    # --- reading -----------------------------------------------------------------------
    def _task(self, s: int, episode: int) -> str:
        tasks = self._tasks[s]
        if episode not in tasks:
            tasks[episode] = str(self.sources[s].episode_meta(episode)["task"])
        return tasks[episode]

    def image_bytes(self) -> int:
        """Bytes every decoded image of every source takes in memory."""
        return sum(s.num_frames * h * w * 3 for s in self.sources for h, w in s.cameras.values())

    def preload(self) -> None:
        """Decode every image into memory once. Reads then cost nothing, so samplers may draw
        frames uniformly; DataLoader workers forked afterwards share these pages."""
        for s, src in enumerate(self.sources):
            for cam in self.cameras[s]:
                if (s, cam) not in self._images:
                    self._images[(s, cam)] = np.ascontiguousarray(src.read(IMAGE_PREFIX + cam, 0, src.num_frames))

    @property
    def preloaded(self) -> bool:
        return len(self._images) == sum(len(c) for c in self.cameras)

    def _image(self, s: int, camera: str, frame: int) -> np.ndarray:
        full = self._images.get((s, camera))
        if full is not None:
            return full[frame]
        if self._cache is None:
            self._cache = ChunkCache(self.cache_mb)
        size = self._chunk[s][camera]
        c = frame // size
        src, n = self.sources[s], self._cols[s].num_frames

        def load() -> np.ndarray:
            return np.asarray(src.read(IMAGE_PREFIX + camera, c * size, min((c + 1) * size, n)))

        return self._cache.get((s, camera, c), load)[frame - c * size]

    def raw(self, index: int, seed: int | None = None, normalized: bool = False) -> dict[str, Any]:
        """The sample before per-sample transforms: robot units (or normalized), images as stored."""
        s, f = self.locate(int(index))
        cols = self._cols[s]
        ep = bisect.bisect_right(cols.ends_list, f)
        start, end = cols.starts_list[ep], cols.ends_list[ep]
        steps = np.arange(f, f + self.horizon)
        chunk = np.minimum(steps, end - 1)
        state = cols.state_n if normalized else cols.state
        if self.relative_actions:
            actions = relative_to_state(cols.action[chunk], cols.state[f])
            if normalized:
                actions = self._normalize_actions({"robot": self.robots[s], "actions": actions})["actions"]
        else:
            actions = (cols.action_n if normalized else cols.action)[chunk]
        return {
            "robot": self.robots[s],
            "instruction": self._task(s, ep),
            "state": state[f],
            "images": {cam: self._image(s, cam, f) for cam in self.cameras[s]},
            "cameras": self.cameras[s],
            "actions": actions,
            "action_valid": (steps < end) & self.imitate[s],
            **({"role_pixels": {cam: xy[f] for cam, xy in cols.role_pixels.items()}} if cols.role_pixels else {}),
            "source": s, "episode": ep, "frame": f - start, "index": int(index),
            "seed": int(seed) if seed is not None else (self.seed * 1_000_003 + int(index)) % 2**63,
        }

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = (key if isinstance(key, tuple) else (key, None))
        return self.transform(self.raw(index, seed, normalized=True))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None  # every process fills its own cache
        return state


def make_loader(sources: Sequence[Any], batch_size: int = 64, weights: Sequence[float] | None = None,
                horizon: int | None = None, normalization: str | None = None,
                augment: ImageAugment | None = None, num_workers: int = 2, window: int = 4,
                num_samples: int | None = None, seed: int = 0,
                cache_mb: float = 64.0, **dataset_kwargs: Any) -> torch.utils.data.DataLoader:
    """DataLoader over a PooledDataset with a ChunkBatchSampler and Collate (fixed camera
    slots: every camera name of the mixture). `sources` may also be a `Recipe`, whose
    weights, horizon and normalization apply unless given here (defaults: 16, "mean_std"),
    and whose entries say which sources are imitated."""
    from embodied.data.collate import Collate
    from embodied.data.mixture import Recipe
    from embodied.data.sampler import ChunkBatchSampler

    if isinstance(sources, Recipe):
        recipe = sources
        sources, weights = recipe.open_sources(), (weights if weights is not None else recipe.weights)
        horizon = horizon or recipe.horizon
        normalization = normalization or recipe.normalization
        dataset_kwargs.setdefault("imitate", recipe.imitate)
    ds = PooledDataset(sources, horizon=horizon or 16, normalization=normalization or "mean_std",
                       augment=augment, seed=seed,
                       cache_mb=cache_mb, **dataset_kwargs)
    sampler = ChunkBatchSampler(ds, batch_size, weights, num_samples=num_samples, window=window,
                                num_workers=num_workers, seed=seed)
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=num_workers,
                                       collate_fn=Collate(tuple(ds.camera_slots)),
                                       persistent_workers=num_workers > 0, worker_init_fn=_worker_init)


def _worker_init(worker_id: int) -> None:
    """One decompression thread per worker: the workers are the parallelism."""
    try:
        import numcodecs.blosc

        numcodecs.blosc.set_nthreads(1)
    except ImportError:  # pragma: no cover
        pass
