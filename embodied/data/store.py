"""EpisodeStore: one dataset of one robot's episodes in a zarr v3 group.

Layout::

    store.zarr/
      zarr.json                    attrs: format, version, robot, fps, cameras, spec snapshot, tasks, stats
      data/observation.state       float32[N, n]       chunked along time
      data/action                  float32[N, m]
      data/timestamp               float32[N]          [s] from the episode start
      data/observation.images.<c>  uint8[N, H, W, 3]   Blosc/zstd, chunked along time
      data/label.role_pixels.<c>   float32[N, 2, 2]    optional: where the instruction's objects
                                                       are in camera c (NaN: unknown); created by
                                                       the first episode that carries them
      meta/episode_ends            int64[E]            the commit point, written last
      meta/success, meta/task_index, meta/source_index, meta/seed

Crash safety: an append writes frames first, then the per-episode metadata, then its entry
in `episode_ends`. zarr's local store writes every file atomically (temporary file and
rename), so a writer killed at any instant leaves a store whose committed episodes are
intact; frames past the last committed end are ignored and overwritten by the next append.
A reader may open the store while another process appends and sees a consistent prefix
(`refresh()` picks up new episodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from embodied.data.episode import ACTION, IMAGE_PREFIX, ROLE_PIXELS_PREFIX, ROLES, SOURCES, STATE, TIMESTAMP, Episode
from embodied.data.stats import compute_stats
from embodied.errors import CorruptStore, SchemaMismatch
from robots.spec import RobotSpec

FORMAT, VERSION = "embodied-episodes", 1
STATE_CHUNK, IMAGE_CHUNK = 4096, 64  # frames per chunk
_EPISODE_META = ("success", "task_index", "source_index", "seed")
_IMAGE_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.noshuffle)  # uint8: shuffling buys nothing, decoding is 2x faster without


class EpisodeStore:
    """Open with `EpisodeStore.create(...)` or `EpisodeStore.open(path, mode="r"|"a")`."""

    def __init__(self, path: Path, group: zarr.Group, writable: bool):
        self.path, self._group, self.writable = path, group, writable
        self.refresh()

    # --- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, robot: str, fps: float, state_dim: int, action_dim: int,
               cameras: dict[str, tuple[int, int]], spec: dict[str, Any] | None = None) -> "EpisodeStore":
        """New empty store; `cameras` maps camera name -> (height, width)."""
        path = Path(path)
        if path.exists():
            raise SchemaMismatch(f"{path} already exists; open it with EpisodeStore.open(path, 'a') to append, "
                                 "or choose a new path")
        g = zarr.open_group(str(path), mode="w-")
        g.attrs.update({"format": FORMAT, "version": VERSION, "robot": robot, "fps": float(fps),
                        "state_dim": state_dim, "action_dim": action_dim,
                        "cameras": {k: list(v) for k, v in cameras.items()}, "spec": spec or {}, "tasks": []})
        d, m = g.create_group("data"), g.create_group("meta")
        d.create_array(STATE, shape=(0, state_dim), chunks=(STATE_CHUNK, state_dim), dtype="float32")
        d.create_array(ACTION, shape=(0, action_dim), chunks=(STATE_CHUNK, action_dim), dtype="float32")
        d.create_array(TIMESTAMP, shape=(0,), chunks=(STATE_CHUNK,), dtype="float32")
        for cam, (h, w) in cameras.items():
            d.create_array(IMAGE_PREFIX + cam, shape=(0, h, w, 3), chunks=(IMAGE_CHUNK, h, w, 3), dtype="uint8",
                           compressors=[_IMAGE_CODEC])
        m.create_array("episode_ends", shape=(0,), chunks=(STATE_CHUNK,), dtype="int64", fill_value=-1)
        m.create_array("success", shape=(0,), chunks=(STATE_CHUNK,), dtype="bool")
        m.create_array("task_index", shape=(0,), chunks=(STATE_CHUNK,), dtype="int32", fill_value=-1)
        m.create_array("source_index", shape=(0,), chunks=(STATE_CHUNK,), dtype="int8", fill_value=-1)
        m.create_array("seed", shape=(0,), chunks=(STATE_CHUNK,), dtype="int64", fill_value=-1)
        return cls(path, g, writable=True)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> "EpisodeStore":
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise CorruptStore(f"{path} is not an episode store (no zarr.json); create one with "
                               "`embodied simgen` or EpisodeStore.create")
        try:
            g = zarr.open_group(str(path), mode="r" if mode == "r" else "r+")
        except Exception as e:  # zarr raises several types for unreadable metadata
            raise CorruptStore(f"{path}: cannot read the zarr metadata ({e}); restore it from a copy") from e
        if g.attrs.get("format") != FORMAT:
            raise CorruptStore(f"{path}: format {g.attrs.get('format')!r} is not {FORMAT!r}; "
                               "import foreign datasets with `embodied data import-lerobot`")
        if g.attrs.get("version", 0) > VERSION:
            raise CorruptStore(f"{path}: store version {g.attrs['version']} is newer than this code ({VERSION}); upgrade embodied")
        return cls(path, g, writable=mode != "r")

    # --- schema ------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    def set_attr(self, key: str, value: Any) -> None:
        """Record provenance metadata (JSON-serializable) in the store's attributes."""
        if not self.writable:
            raise SchemaMismatch(f"{self.path} is open read-only; open it with mode='a' to record {key!r}")
        self._group.attrs[key] = self._attrs[key] = value

    @property
    def robot(self) -> str:
        return self._attrs["robot"]

    @property
    def fps(self) -> float:
        return self._attrs["fps"]

    @property
    def cameras(self) -> dict[str, tuple[int, int]]:
        return {k: tuple(v) for k, v in self._attrs["cameras"].items()}

    @property
    def tasks(self) -> list[str]:
        return list(self._attrs["tasks"])

    def schema(self) -> dict[str, Any]:
        a = self._attrs
        return {"robot": a["robot"], "fps": a["fps"], "state_dim": a["state_dim"], "action_dim": a["action_dim"],
                "cameras": self.cameras}

    # --- reading -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the committed episodes (another process may have appended)."""
        self._attrs = dict(self._group.attrs)
        try:
            self._data = {k: self._group[f"data/{k}"] for k in (STATE, ACTION, TIMESTAMP)}
            self._data.update({IMAGE_PREFIX + c: self._group[f"data/{IMAGE_PREFIX}{c}"] for c in self._attrs["cameras"]})
            data = self._group["data"]
            self._data.update({ROLE_PIXELS_PREFIX + c: data[ROLE_PIXELS_PREFIX + c] for c in self._attrs["cameras"]
                               if ROLE_PIXELS_PREFIX + c in data})
            self._meta = {k: self._group[f"meta/{k}"] for k in ("episode_ends", *_EPISODE_META)}
            ends = self._meta["episode_ends"][:]
        except (KeyError, FileNotFoundError, ValueError) as e:
            raise CorruptStore(f"{self.path}: missing or unreadable array ({e}); the store is damaged, "
                               "restore it from a copy or re-run the collection") from e
        # committed prefix: strictly increasing positive ends, backed by frames and metadata
        n_frames = min(a.shape[0] for a in self._data.values())
        n_meta = min(self._meta[k].shape[0] for k in _EPISODE_META)
        valid = 0
        for i, end in enumerate(ends[:n_meta]):
            if end <= (ends[i - 1] if i else 0) or end > n_frames:
                break
            valid = i + 1
        self.episode_ends = ends[:valid].astype(np.int64)
        # per-episode metadata is tiny: read it once here, not once per episode_meta() call
        self._episode_meta = {k: self._meta[k][:valid] for k in _EPISODE_META}

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1]) if self.num_episodes else 0

    def bounds(self, i: int) -> tuple[int, int]:
        """Frame range [start, end) of episode i."""
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: the store has {self.num_episodes} episodes")
        return (int(self.episode_ends[i - 1]) if i else 0), int(self.episode_ends[i])

    def array(self, key: str) -> zarr.Array:
        """Raw per-frame array (rows past `num_frames` are not committed)."""
        return self._data[key]

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) of one key ("observation.state", "action", "timestamp",
        "observation.images.<camera>"): the FrameSource interface the loaders use."""
        return self._data[key][start:stop]

    @property
    def role_pixel_cameras(self) -> list[str]:
        """Cameras with role-pixel labels (`Episode.role_pixels`); frames recorded without
        them read as NaN."""
        return [c for c in self.cameras if ROLE_PIXELS_PREFIX + c in self._data]

    def seeds(self) -> set[int]:
        """Seeds of the committed episodes (resuming a generation skips them)."""
        return {int(s) for s in self._episode_meta["seed"]}

    def episode_meta(self, i: int) -> dict[str, Any]:
        start, end = self.bounds(i)
        m = self._episode_meta
        return {"index": i, "length": end - start, "success": bool(m["success"][i]),
                "task": self.tasks[int(m["task_index"][i])], "source": SOURCES[int(m["source_index"][i])],
                "seed": int(m["seed"][i])}

    def episode(self, i: int, images: bool = True) -> Episode:
        start, end = self.bounds(i)
        meta = self.episode_meta(i)
        return Episode(
            state=self._data[STATE][start:end], action=self._data[ACTION][start:end],
            timestamp=self._data[TIMESTAMP][start:end],
            images={c: self._data[IMAGE_PREFIX + c][start:end] for c in self.cameras} if images else {},
            task=meta["task"], success=meta["success"], source=meta["source"], seed=meta["seed"],
            role_pixels={c: self._data[ROLE_PIXELS_PREFIX + c][start:end] for c in self.role_pixel_cameras}
            if images else {})

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(i) for i in range(self.num_episodes))

    def __len__(self) -> int:
        return self.num_episodes

    # --- writing -----------------------------------------------------------------------
    def append(self, ep: Episode) -> int:
        """Validate and commit one episode; returns its index. Nothing is written if invalid."""
        if not self.writable:
            raise SchemaMismatch(f"{self.path} is open read-only; open it with mode='a' to append")
        a = self._attrs
        ep.validate(a["state_dim"], a["action_dim"], self.cameras)
        start, t = self.num_frames, len(ep)
        columns = {STATE: ep.state, ACTION: ep.action, TIMESTAMP: ep.timestamp}
        columns.update({IMAGE_PREFIX + c: ep.images[c] for c in self.cameras})
        for c in self.cameras:
            key = ROLE_PIXELS_PREFIX + c
            if c in ep.role_pixels and key not in self._data:  # frames before this episode read as NaN
                self._data[key] = self._group["data"].create_array(
                    key, shape=(start, len(ROLES), 2), chunks=(STATE_CHUNK, len(ROLES), 2), dtype="float32", fill_value=np.nan)
            if key in self._data:
                columns[key] = ep.role_pixels.get(c, np.full((t, len(ROLES), 2), np.nan, np.float32))
        for key, values in columns.items():
            arr = self._data[key]
            arr.resize((start + t, *arr.shape[1:]))
            arr[start:start + t] = values
        if ep.task not in a["tasks"]:
            self._group.attrs["tasks"] = a["tasks"] = [*a["tasks"], ep.task]
        e = self.num_episodes
        for key, value in (("success", ep.success), ("task_index", a["tasks"].index(ep.task)),
                           ("source_index", SOURCES.index(ep.source)), ("seed", ep.seed)):
            self._meta[key].resize((e + 1,))
            self._meta[key][e] = value
            self._episode_meta[key] = np.append(self._episode_meta[key], value)
        ends = self._meta["episode_ends"]
        ends.resize((e + 1,))
        ends[e] = start + t  # commit
        self.episode_ends = np.append(self.episode_ends, start + t)
        return e

    # --- statistics --------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, list[float]]]:
        """Per-dimension mean, std, min, max, q01, q99 of state and action; cached in the
        store's attributes and recomputed when episodes were added since."""
        cached = self._attrs.get("stats")
        if cached and cached.get("frames") == self.num_frames:
            return {k: v for k, v in cached.items() if k != "frames"}
        n = self.num_frames
        stats = {STATE: compute_stats(self._data[STATE][:n]), ACTION: compute_stats(self._data[ACTION][:n])}
        if self.writable:
            self._group.attrs["stats"] = self._attrs["stats"] = {**stats, "frames": n}
        return stats


def open_robot_store(path: str | Path, robot: RobotSpec, cameras: Mapping[str, tuple[int, int]]) -> EpisodeStore:
    """The store at `path` for episodes of `robot` with `cameras` {name: (height, width)}
    (state and action: the robot's action vector): created, or opened for appending.

    Raises:
        SchemaMismatch: the store at `path` holds another robot, rate or camera set.
    """
    path, cameras = Path(path), {name: tuple(size) for name, size in cameras.items()}
    if not path.exists():
        return EpisodeStore.create(path, robot.name, robot.control_hz, robot.action_dim, robot.action_dim, cameras,
                                   spec=robot.to_dict())
    store = EpisodeStore.open(path, "a")
    want = {"robot": robot.name, "fps": robot.control_hz, "state_dim": robot.action_dim,
            "action_dim": robot.action_dim, "cameras": cameras}
    if store.schema() != want:
        raise SchemaMismatch(f"{path} holds {store.schema()}, but these episodes need {want}; write them to a new "
                             "store (one store per robot and camera set), or record with the cameras it holds")
    return store
