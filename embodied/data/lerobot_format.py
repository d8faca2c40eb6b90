"""LeRobot v3.0 on-disk layout: paths, info.json, parquet helpers shared by export, import
and the reader.

A v3.0 dataset::

    meta/info.json                               codebase_version "v3.0", fps, features, path templates
    meta/stats.json                              {feature: {mean, std, min, max, count, q01, q99}}
    meta/tasks.parquet                           task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet     one row per episode: length, tasks, where its rows
                                                 and video segments are
    data/chunk-000/file-000.parquet              one row per frame: features, timestamp, indices
    videos/<key>/chunk-000/file-000.mp4          the episodes of one camera, one after the other

Video frames are found by time: frame t of episode e is at `from_timestamp(e) + timestamp(t)`
in its mp4 file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from embodied.data.episode import IMAGE_PREFIX
from embodied.errors import CorruptStore, UnsupportedFormat

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO, STATS, TASKS, EMBODIED = "meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/embodied.json"
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
VISUAL = ("video", "image")


def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json of a v3.0 dataset; other versions raise UnsupportedFormat."""
    path = root / INFO
    if not path.is_file():
        raise CorruptStore(f"{path} not found: {root} is not a LeRobot dataset; point at the folder that holds meta/")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CorruptStore(f"{path}: cannot parse ({e}); re-download or re-export the dataset") from e
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise UnsupportedFormat(
            f"{root} is a LeRobot {version or 'unversioned'} dataset; only {CODEBASE_VERSION} is read. Convert it "
            "first with lerobot's converter: `python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 "
            f"--repo-id=local/<name> --root={root} --push-to-hub=false` (lerobot >= 0.4, converts in place), "
            "then import the result")
    for key in ("fps", "features"):
        if key not in info:
            raise CorruptStore(f"{path} has no {key!r}; the dataset is damaged")
    return info


def camera_name(key: str) -> str:
    """observation.images.top -> top; observation.image -> image."""
    return key[len(IMAGE_PREFIX):] if key.startswith(IMAGE_PREFIX) else key.rsplit(".", 1)[-1]


def image_hw(feature: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of an image/video feature, whichever axis order its names give."""
    shape, names = list(feature["shape"]), feature.get("names") or []
    if len(shape) == 3 and "height" in names and "width" in names:
        return int(shape[names.index("height")]), int(shape[names.index("width")])
    if len(shape) == 3 and shape[0] in (1, 3) and shape[2] not in (1, 3):  # channels first
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


def read_parquet(path: Path, columns: list[str] | None = None):
    """A pyarrow Table, or CorruptStore naming the file."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise CorruptStore(f"{path} is missing; the LeRobot dataset is incomplete, re-download or re-export it")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, KeyError... for damaged files
        raise CorruptStore(f"{path}: unreadable parquet ({e}); re-download or re-export the dataset") from e


def read_parquet_dir(folder: Path):
    """All `chunk-*/file-*.parquet` under folder, concatenated in file order."""
    import pyarrow as pa

    files = sorted(folder.glob("chunk-*/file-*.parquet"))
    if not files:
        raise CorruptStore(f"{folder} holds no chunk-*/file-*.parquet; the LeRobot dataset is incomplete")
    tables = [read_parquet(f) for f in files]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except Exception as e:
        raise CorruptStore(f"{folder}: parquet files disagree on their columns ({e})") from e


def vectors(column) -> np.ndarray:
    """A list / fixed-size-list / scalar parquet column as a 2-D numpy array [rows, dim]."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), -1) if len(column) else flat.reshape(0, 0)
    return column.to_numpy(zero_copy_only=False).reshape(len(column), 1)


def tasks_table(tasks: list[str]):
    """meta/tasks.parquet content: task_index with the task string as pandas index, so
    `pandas.read_parquet` gives what LeRobot expects (tasks.loc[task] -> task_index)."""
    import pyarrow as pa

    pandas_meta = {"index_columns": ["task"], "column_indexes": [{"name": None, "field_name": None,
                   "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(root: Path) -> list[str]:
    """Task strings ordered by task_index."""
    table = read_parquet(root / TASKS)
    names = table.column_names
    text = next((c for c in ("task", "__index_level_0__") if c in names), None)
    if text is None or "task_index" not in names:
        raise CorruptStore(f"{root / TASKS}: expected columns task and task_index, found {names}")
    order = np.asarray(table.column("task_index").to_numpy(zero_copy_only=False), np.int64)
    strings = table.column(text).to_pylist()
    tasks = [""] * len(strings)
    for i, s in zip(order, strings):
        if not 0 <= i < len(tasks):
            raise CorruptStore(f"{root / TASKS}: task_index {i} out of range 0..{len(tasks) - 1}")
        tasks[i] = s
    return tasks
