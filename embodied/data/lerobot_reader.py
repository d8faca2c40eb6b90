"""LeRobotSource: a FrameSource read straight from a LeRobot v3.0 dataset folder.

Per-frame vectors (state, action, timestamp, task) are read from the data parquet files
into memory once; images come either from the parquet (image features: PNG/JPEG bytes in a
{bytes, path} struct, as Hugging Face `datasets` writes them) or from the mp4 files (video
features), decoded on demand with PyAV. A video is decoded forward from where the last read
stopped, and seeks (to the keyframe before the wanted frame) only when a read jumps back or
far ahead; a small cache of decoded frames serves overlapping reads.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from embodied.data.episode import ACTION, IMAGE_PREFIX, SOURCES, STATE, TIMESTAMP
from embodied.data.lerobot_format import (VIDEO_PATH, VISUAL, camera_name, image_hw, read_info, read_parquet,
                                          read_parquet_dir, read_tasks, vectors)
from embodied.data.stats import compute_stats
from embodied.errors import CorruptStore, SchemaMismatch

SEEK_AHEAD = 8  # decode forward (rather than seek) when the wanted frame is at most this many frames ahead


class LeRobotSource:
    """FrameSource over a LeRobot v3.0 dataset; cameras are named without "observation.images."."""

    def __init__(self, path: str | Path, robot: str | None = None, cache_frames: int = 64):
        self.path = Path(path)
        self.info = read_info(self.path)
        self._robot = robot or self.info.get("robot_type") or "unknown"
        self._cache_frames = cache_frames
        features: dict[str, Any] = self.info["features"]
        missing = [k for k in (STATE, ACTION) if k not in features]
        if missing:
            raise SchemaMismatch(f"{self.path}: no {missing} feature; embodied needs observation.state and action, "
                                 f"the dataset has {sorted(features)}")
        self._visual = {camera_name(k): k for k, f in features.items() if f.get("dtype") in VISUAL}
        self._is_video = {c: features[k]["dtype"] == "video" for c, k in self._visual.items()}
        self._cameras = {c: image_hw(features[k]) for c, k in self._visual.items()}
        self.tasks = read_tasks(self.path)
        self._read_episodes()
        self._read_data(features)
        self._videos: dict[tuple[str, int, int], _VideoFile] = {}
        self._stats: dict[str, dict[str, list[float]]] | None = None

    # --- loading ---------------------------------------------------------------------------
    def _read_episodes(self) -> None:
        table = read_parquet_dir(self.path / "meta" / "episodes")
        cols = {name: table.column(name).to_pylist() for name in table.column_names
                if not name.startswith("stats/")}
        need = ["episode_index", "length", "dataset_from_index", "dataset_to_index"]
        need += [f"videos/{self._visual[c]}/{f}" for c, v in self._is_video.items() if v
                 for f in ("chunk_index", "file_index", "from_timestamp")]
        lacking = [n for n in need if n not in cols]
        if lacking:
            raise CorruptStore(f"{self.path / 'meta' / 'episodes'}: episode metadata lacks {lacking}")
        order = np.argsort(cols["episode_index"], kind="stable")
        self._episodes = {k: [v[i] for i in order] for k, v in cols.items()}
        lengths = np.asarray(self._episodes["length"], np.int64)
        self.episode_ends = np.cumsum(lengths).astype(np.int64)

    def _read_data(self, features: dict[str, Any]) -> None:
        extra = [k for k in ("next.success",) if k in features]
        images = [self._visual[c] for c, v in self._is_video.items() if not v]
        columns = [STATE, ACTION, TIMESTAMP, "index", "episode_index", "task_index", *extra, *images]
        tables = [read_parquet(f, columns) for f in sorted((self.path / "data").glob("chunk-*/file-*.parquet"))]
        if not tables:
            raise CorruptStore(f"{self.path / 'data'} holds no chunk-*/file-*.parquet; the dataset is incomplete")
        import pyarrow as pa

        table = pa.concat_tables(tables)
        index = table.column("index").to_numpy()
        rows = np.full(int(index.max()) + 1 if len(index) else 0, -1, np.int64)
        rows[index] = np.arange(len(index))
        ep = self._episodes
        try:  # row positions of every frame, episodes in order
            order = np.concatenate([rows[a:b] for a, b in zip(ep["dataset_from_index"], ep["dataset_to_index"])])
        except ValueError:
            order = np.zeros(0, np.int64)
        if len(order) != self.num_frames or (order < 0).any():
            raise CorruptStore(f"{self.path}: the data parquet files hold {len(index)} frames, the episode metadata "
                               f"expects {self.num_frames} (index ranges {ep['dataset_from_index'][:1]}..); "
                               "the dataset is incomplete")
        identity = np.array_equal(order, np.arange(len(index)))
        if not identity:
            table = table.take(pa.array(order))
        episode_of_frame = table.column("episode_index").to_numpy()
        expected = np.repeat(np.asarray(ep["episode_index"]), np.diff(self.episode_ends, prepend=0))
        if not np.array_equal(episode_of_frame, expected):
            raise CorruptStore(f"{self.path}: frames' episode_index disagrees with meta/episodes")
        self._vectors = {STATE: vectors(table.column(STATE)).astype(np.float32),
                         ACTION: vectors(table.column(ACTION)).astype(np.float32),
                         TIMESTAMP: vectors(table.column(TIMESTAMP)).reshape(-1).astype(np.float32)}
        self._task_index = table.column("task_index").to_numpy().astype(np.int64)
        self._success = vectors(table.column("next.success")).reshape(-1).astype(bool) if extra else None
        self._images = {camera_name(k): table.column(k).combine_chunks() for k in images}

    # --- FrameSource -----------------------------------------------------------------------
    @property
    def robot(self) -> str:
        return self._robot

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def cameras(self) -> dict[str, tuple[int, int]]:
        return dict(self._cameras)

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    def bounds(self, i: int) -> tuple[int, int]:
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: the dataset has {self.num_episodes} episodes")
        return (int(self.episode_ends[i - 1]) if i else 0), int(self.episode_ends[i])

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) of observation.state, action, timestamp or observation.images.<camera>."""
        if key in self._vectors:
            return self._vectors[key][start:stop]
        cam = key[len(IMAGE_PREFIX):] if key.startswith(IMAGE_PREFIX) else key
        if cam not in self._cameras:
            raise KeyError(f"{key!r} is not in {self.path}; keys: {[STATE, ACTION, TIMESTAMP]} and "
                           f"{[IMAGE_PREFIX + c for c in self._cameras]}")
        h, w = self._cameras[cam]
        stop = min(stop, self.num_frames)
        out = np.empty((max(stop - start, 0), h, w, 3), np.uint8)
        pos = start
        while pos < stop:  # one episode at a time
            e = int(np.searchsorted(self.episode_ends, pos, side="right"))
            end = min(stop, int(self.episode_ends[e]))
            frames = self._video_frames(cam, e, pos, end) if self._is_video[cam] else self._parquet_frames(cam, pos, end)
            if frames.shape[1:] != out.shape[1:]:
                raise CorruptStore(f"{self.path}: {self._visual[cam]} frames are {frames.shape[1:]}, "
                                   f"meta/info.json says {out.shape[1:]}")
            out[pos - start:end - start] = frames
            pos = end
        return out

    def episode_meta(self, i: int) -> dict[str, Any]:
        start, end = self.bounds(i)
        ep = self._episodes
        success = bool(ep["embodied/success"][i]) if "embodied/success" in ep else (
            bool(self._success[start:end].any()) if self._success is not None else True)
        source = ep["embodied/source"][i] if "embodied/source" in ep else "import"
        return {"index": i, "length": end - start, "success": success,
                "task": self.tasks[int(self._task_index[start])], "tasks": sorted(set(self.episode_tasks(i))),
                "source": source if source in SOURCES else "import",
                "seed": int(ep["embodied/seed"][i]) if "embodied/seed" in ep else -1}

    def episode_tasks(self, i: int) -> list[str]:
        start, end = self.bounds(i)
        return [self.tasks[t] for t in np.unique(self._task_index[start:end])]

    def stats(self) -> dict[str, dict[str, list[float]]]:
        if self._stats is None:
            self._stats = {STATE: compute_stats(self._vectors[STATE]), ACTION: compute_stats(self._vectors[ACTION])}
        return self._stats

    # --- images ----------------------------------------------------------------------------
    def _video_frames(self, cam: str, e: int, start: int, stop: int) -> np.ndarray:
        key, ep = self._visual[cam], self._episodes
        where = (cam, int(ep[f"videos/{key}/chunk_index"][e]), int(ep[f"videos/{key}/file_index"][e]))
        video = self._videos.get(where)
        if video is None:
            template = self.info.get("video_path") or VIDEO_PATH
            path = self.path / template.format(video_key=key, chunk_index=where[1], file_index=where[2])
            video = self._videos[where] = _VideoFile(path, self.fps, self._cache_frames)
        times = float(ep[f"videos/{key}/from_timestamp"][e]) + self._vectors[TIMESTAMP][start:stop].astype(np.float64)
        return video.frames(times)

    def _parquet_frames(self, cam: str, start: int, stop: int) -> np.ndarray:
        column = self._images[cam]
        frames = []
        for i in range(start, stop):
            item = column[i].as_py()
            data = item.get("bytes") if isinstance(item, dict) else item
            if data is None and isinstance(item, dict) and item.get("path"):
                p = Path(item["path"])
                p = p if p.is_absolute() else self.path / p
                try:
                    data = p.read_bytes()
                except OSError as e:
                    raise CorruptStore(f"{p}: image of frame {i} cannot be read ({e})") from e
            if data is None:
                raise CorruptStore(f"{self.path}: frame {i} of {self._visual[cam]} holds no image bytes or path")
            frames.append(decode_image(data, f"{self._visual[cam]} frame {i}"))
        return np.stack(frames) if frames else np.zeros((0, *self._cameras[cam], 3), np.uint8)

    def close(self) -> None:
        for v in self._videos.values():
            v.close()
        self._videos.clear()

    def __getstate__(self) -> dict[str, Any]:  # open containers do not cross process boundaries
        state = dict(self.__dict__)
        state["_videos"] = {}
        return state


def decode_image(data: bytes, what: str) -> np.ndarray:
    """PNG or JPEG bytes -> uint8[H, W, 3] (PyAV's image decoders)."""
    import av

    codec = "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "mjpeg" if data[:2] == b"\xff\xd8" else None
    if codec is None:
        raise CorruptStore(f"{what}: image bytes are neither PNG nor JPEG (starts {data[:8]!r})")
    try:
        frames = av.CodecContext.create(codec, "r").decode(av.Packet(data))
        return frames[0].to_ndarray(format="rgb24")
    except (av.FFmpegError, IndexError) as e:
        raise CorruptStore(f"{what}: cannot decode the {codec} image ({e})") from e


class _VideoFile:
    """Frames of one mp4 by time, decoding forward and seeking only when needed."""

    def __init__(self, path: Path, fps: float, cache_frames: int):
        self.path, self.fps, self._cache_size = path, fps, cache_frames
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._container = self._stream = self._decoder = self._rgb = None
        self._last = -(1 << 60)  # frame number of the last decoded frame

    def _open(self) -> None:
        import av

        if not self.path.is_file():
            raise CorruptStore(f"{self.path} is missing; the LeRobot dataset is incomplete, re-download it")
        try:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
            self._rgb = av.video.reformatter.VideoReformatter()  # keeps its conversion context between frames
        except (av.FFmpegError, IndexError) as e:
            raise CorruptStore(f"{self.path}: unreadable video ({e})") from e
        self._decoder = None

    def frames(self, times: np.ndarray) -> np.ndarray:
        """Frames shown at `times` [s] (nearest frame; CFR video at the dataset's fps)."""
        wanted = np.rint(times * self.fps).astype(np.int64)
        return np.stack([self._frame(int(k)) for k in wanted])

    def _frame(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        if self._container is None:
            self._open()
        if self._decoder is None or not self._last < k <= self._last + SEEK_AHEAD:
            self._seek(k)
        import av

        try:
            for frame in self._decoder:
                n = int(round(float(frame.pts * frame.time_base) * self.fps)) if frame.pts is not None else self._last + 1
                self._last = n
                if n < k:
                    continue
                image = self._rgb.reformat(frame, format="rgb24").to_ndarray()
                self._cache[n] = image
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
                if n >= k:
                    break
        except av.FFmpegError as e:
            raise CorruptStore(f"{self.path}: decoding failed near {k / self.fps:.3f} s ({e})") from e
        if k not in self._cache:
            self._decoder = None
            raise CorruptStore(f"{self.path}: no frame at {k / self.fps:.3f} s (frame {k}); the video is shorter than "
                               "the episode metadata says, or its timestamps disagree")
        return self._cache[k]

    def _seek(self, k: int) -> None:
        offset = int((k / self.fps - 0.5 / self.fps) / self._stream.time_base)
        self._container.seek(max(offset, 0), stream=self._stream, backward=True)
        self._decoder = self._container.decode(self._stream)
        self._last = -(1 << 60)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._decoder = None
