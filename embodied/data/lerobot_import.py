"""LeRobot v3.0 dataset -> new EpisodeStore (image-in-parquet and video features both)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from embodied.data.episode import ACTION, IMAGE_PREFIX, STATE, TIMESTAMP, Episode
from embodied.data.lerobot_format import EMBODIED
from embodied.data.lerobot_reader import LeRobotSource
from embodied.data.store import EpisodeStore
from embodied.errors import DataError


class ImportReport(NamedTuple):
    path: Path
    episodes: int  # imported
    frames: int
    skipped: list[int]  # LeRobot episode indices left out (NaN or inf in state or action)


def import_lerobot(src: str | Path, out: str | Path, robot: str | None = None,
                   progress: bool = False) -> ImportReport:
    """Read the LeRobot v3.0 dataset at `src` into a new EpisodeStore at `out`.

    `robot` names the robot (default: the dataset's robot_type). Cameras keep their key
    without "observation.images.". An episode whose state or action holds NaN or inf is
    skipped with a warning and listed in the report. Each episode's task is the task of its
    first frame (a warning names episodes with several). LeRobot keeps no success flag:
    episodes count as successful unless the dataset has `next.success` or was exported by
    embodied. The store is built in `<out>.partial` and renamed when complete, so a failed
    import leaves nothing at `out`.
    """
    from tqdm import tqdm

    out = Path(out)
    if out.exists():
        raise DataError(f"{out} already exists; choose a new store path or remove it first")
    source = LeRobotSource(src, robot=robot)
    extra = Path(src) / EMBODIED
    spec = json.loads(extra.read_text()).get("spec", {}) if extra.is_file() else {}
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    skipped: list[int] = []
    try:
        store = EpisodeStore.create(tmp, source.robot, source.fps, source.read(STATE, 0, 1).shape[1],
                                    source.read(ACTION, 0, 1).shape[1], source.cameras, spec=spec)
        for e in tqdm(range(source.num_episodes), desc="import-lerobot", unit="ep", disable=not progress):
            start, end = source.bounds(e)
            meta = source.episode_meta(e)
            state, action = source.read(STATE, start, end), source.read(ACTION, start, end)
            if not (np.isfinite(state).all() and np.isfinite(action).all()):
                skipped.append(e)
                warnings.warn(f"{source.path}: episode {e} has NaN or inf in its state or action; skipped",
                              stacklevel=2)
                continue
            if len(meta["tasks"]) > 1:
                warnings.warn(f"{source.path}: episode {e} has {len(meta['tasks'])} tasks; keeping the first, "
                              f"{meta['task']!r}", stacklevel=2)
            store.append(Episode(
                state=state, action=action, timestamp=source.read(TIMESTAMP, start, end),
                images={c: source.read(IMAGE_PREFIX + c, start, end) for c in source.cameras},
                task=meta["task"], success=meta["success"], source=meta["source"], seed=meta["seed"]))
        if store.num_episodes == 0:
            raise DataError(f"{source.path}: every episode was skipped (NaN or inf); nothing to import")
        store.stats()  # cached in the store's attributes
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        source.close()
    return ImportReport(out, store.num_episodes, store.num_frames, skipped)
