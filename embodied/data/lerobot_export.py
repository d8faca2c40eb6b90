"""EpisodeStore -> LeRobot v3.0 dataset (pyarrow parquet + PyAV H.264 mp4)."""

from __future__ import annotations

import json
import shutil
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from embodied.data.episode import ACTION, IMAGE_PREFIX, STATE
from embodied.data.lerobot_format import (CHUNKS_SIZE, CODEBASE_VERSION, DATA_PATH, EMBODIED, EPISODES_PATH, INFO,
                                          STATS, TASKS, VIDEO_PATH, tasks_table)
from embodied.data.stats import compute_stats
from embodied.data.store import EpisodeStore
from embodied.errors import DataError, MediaError

IMAGE_STATS_FRAMES = 512  # frames sampled per camera for stats.json image statistics


class ExportReport(NamedTuple):
    path: Path
    episodes: int
    frames: int
    cameras: list[str]


def export_lerobot(store: EpisodeStore, out: str | Path, crf: int = 18, gop: int = 2,
                   codec: str = "libx264", progress: bool = False) -> ExportReport:
    """Write `store` as a LeRobot v3.0 dataset at `out` (which must not exist).

    One data parquet and one mp4 per camera hold every episode, in store order. Timestamps
    are written as frame_index / fps, the way LeRobot's recorder writes them, because LeRobot
    finds video frames by timestamp; jitter in the store's own timestamps is not kept (a
    warning says so). `crf` sets the H.264 quality (lower is better), `gop` the keyframe
    interval [frames] (LeRobot uses 2, which keeps random access cheap). The dataset is
    assembled in `<out>.partial` and renamed when complete.
    """
    out = Path(out)
    if out.exists():
        raise DataError(f"{out} already exists; choose a new folder or remove it first")
    if store.num_episodes == 0:
        raise DataError(f"{store.path} has no committed episodes; nothing to export")
    for cam, (h, w) in store.cameras.items():
        if h % 2 or w % 2:
            raise MediaError(f"camera {cam} is {w}x{h}; H.264 needs even sizes, crop the store's images first")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(store, tmp, crf, gop, codec, progress)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(out, store.num_episodes, store.num_frames, list(store.cameras))


def _write(store: EpisodeStore, root: Path, crf: int, gop: int, codec: str, progress: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    fps, cams, schema = store.fps, list(store.cameras), store.schema()
    tasks = store.tasks
    data_file = root / DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True)
    writers = {c: _VideoWriter(root / VIDEO_PATH.format(video_key=IMAGE_PREFIX + c, chunk_index=0, file_index=0),
                               store.cameras[c], fps, crf, gop, codec) for c in cams}
    table_schema = pa.schema([(STATE, pa.list_(pa.float32(), schema["state_dim"])),
                              (ACTION, pa.list_(pa.float32(), schema["action_dim"])),
                              ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
                              ("index", pa.int64()), ("task_index", pa.int64())])
    rows: list[dict[str, Any]] = []
    image_samples: dict[str, list[np.ndarray]] = {c: [] for c in cams}
    sample_every = max(1, store.num_frames // IMAGE_STATS_FRAMES)
    jitter = 0.0
    with pq.ParquetWriter(data_file, table_schema) as writer:
        for e in tqdm(range(store.num_episodes), desc="export-lerobot", unit="ep", disable=not progress):
            start, end = store.bounds(e)
            meta, t = store.episode_meta(e), end - start
            state, action = store.read(STATE, start, end), store.read(ACTION, start, end)
            frame_index = np.arange(t, dtype=np.int64)
            timestamp = (frame_index / fps).astype(np.float32)
            jitter = max(jitter, float(np.abs(store.read("timestamp", start, end) - timestamp).max()))
            task_index = tasks.index(meta["task"])
            columns = {STATE: _fixed(state), ACTION: _fixed(action), "timestamp": pa.array(timestamp),
                       "frame_index": pa.array(frame_index), "episode_index": pa.array(np.full(t, e, np.int64)),
                       "index": pa.array(np.arange(start, end, dtype=np.int64)),
                       "task_index": pa.array(np.full(t, task_index, np.int64))}
            writer.write_table(pa.table(columns, schema=table_schema))
            row = {"episode_index": e, "tasks": [meta["task"]], "length": t, "data/chunk_index": 0,
                   "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": end}
            for c in cams:
                frames = store.read(IMAGE_PREFIX + c, start, end)
                writers[c].write(frames)
                key = IMAGE_PREFIX + c
                row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                            f"videos/{key}/from_timestamp": start / fps, f"videos/{key}/to_timestamp": end / fps})
                image_samples[c].append(frames[(-start) % sample_every::sample_every])
            row.update(_episode_stats({STATE: state, ACTION: action}))
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                        "embodied/success": meta["success"], "embodied/source": meta["source"],
                        "embodied/seed": meta["seed"]})
            rows.append(row)
    for w in writers.values():
        w.close()
    if jitter > 1e-4:
        warnings.warn(f"{store.path}: timestamps differ from frame_index / fps by up to {jitter:.4f} s; the export "
                      "writes frame_index / fps (LeRobot finds video frames by timestamp)", stacklevel=3)
    episodes_file = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes_file)
    pq.write_table(tasks_table(tasks), root / TASKS)
    stats = _dataset_stats(store, image_samples)
    (root / STATS).write_text(json.dumps(stats, indent=2))
    (root / INFO).write_text(json.dumps(_info(store, writers), indent=4))
    (root / EMBODIED).write_text(json.dumps({"source_store": str(store.path), "spec": store.attrs.get("spec", {})},
                                            indent=2))


def _fixed(x: np.ndarray):
    import pyarrow as pa

    x = np.ascontiguousarray(x, np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def _episode_stats(columns: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """LeRobot's per-episode `stats/<feature>/<stat>` columns."""
    out = {}
    for key, x in columns.items():
        s = compute_stats(x)
        out.update({f"stats/{key}/{k}": s[k] for k in ("min", "max", "mean", "std", "count", "q01", "q99")})
    return out


def _dataset_stats(store: EpisodeStore, image_samples: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """stats.json: state/action as the store computes them; images per channel in [0, 1],
    shaped [3, 1, 1] as LeRobot keeps them (from a sample of frames)."""
    stats: dict[str, Any] = dict(store.stats())
    for c, parts in image_samples.items():
        x = np.concatenate(parts).reshape(-1, 3).astype(np.float64) / 255.0
        s = compute_stats(x)
        stats[IMAGE_PREFIX + c] = {k: [[[v]] for v in s[k]] for k in ("min", "max", "mean", "std", "q01", "q99")}
        stats[IMAGE_PREFIX + c]["count"] = [len(x) // (store.cameras[c][0] * store.cameras[c][1])]
    lengths = np.diff(store.episode_ends, prepend=0)
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    episode_index = np.repeat(np.arange(store.num_episodes), lengths)
    for key, x in (("timestamp", frame_index / store.fps), ("frame_index", frame_index),
                   ("index", np.arange(store.num_frames)), ("episode_index", episode_index)):
        s = compute_stats(np.asarray(x, np.float64).reshape(-1, 1))
        stats[key] = s
    return stats


def _info(store: EpisodeStore, writers: dict[str, "_VideoWriter"]) -> dict[str, Any]:
    schema = store.schema()
    features: dict[str, Any] = {}
    for c, (h, w) in store.cameras.items():
        features[IMAGE_PREFIX + c] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                                      "info": writers[c].info()}
    spec = store.attrs.get("spec", {})
    for key, dim, prefix in ((STATE, schema["state_dim"], "state"), (ACTION, schema["action_dim"], "action")):
        features[key] = {"dtype": "float32", "shape": [dim], "names": _names(spec, dim, prefix)}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return {"codebase_version": CODEBASE_VERSION, "robot_type": store.robot, "total_episodes": store.num_episodes,
            "total_frames": store.num_frames, "total_tasks": len(store.tasks), "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": _fps_value(store.fps),
            "splits": {"train": f"0:{store.num_episodes}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if store.cameras else None, "features": features}


def _names(spec: dict[str, Any], n: int, prefix: str) -> list[str]:
    """Dimension names from a RobotSpec snapshot (joints then gripper) where they fit n."""
    joints = [j.get("name") for j in spec.get("joints", []) if isinstance(j, dict)]
    names = [*joints, "gripper"] if joints and spec.get("gripper") else joints
    return [str(x) for x in names] if len(names) == n else [f"{prefix}_{i}" for i in range(n)]


def _fps_value(fps: float) -> int | float:
    return int(fps) if float(fps).is_integer() else float(fps)


class _VideoWriter:
    """One mp4 per camera: frame k of the file has pts k (time base 1 / fps), so episode e
    starts at dataset_from_index / fps."""

    def __init__(self, path: Path, hw: tuple[int, int], fps: float, crf: int, gop: int, codec: str):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.count = path, fps, 0
        self.rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(path), "w")
        self._stream = self._container.add_stream(codec, rate=self.rate)
        self._stream.height, self._stream.width = hw
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / self.rate
        self._stream.options = {"crf": str(crf), "g": str(gop), "bf": "0"} if codec == "libx264" else \
            {"crf": str(crf), "g": str(gop)}

    def write(self, frames: np.ndarray) -> None:
        import av

        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = self.count, 1 / self.rate
            self._container.mux(self._stream.encode(vf))
            self.count += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode())
        self._container.close()

    def info(self) -> dict[str, Any]:
        codec = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1"}.get(self._stream.codec_context.name,
                                                                                  self._stream.codec_context.name)
        return {"video.height": self._stream.height, "video.width": self._stream.width, "video.codec": codec,
                "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": _fps_value(self.fps),
                "video.channels": 3, "has_audio": False}
