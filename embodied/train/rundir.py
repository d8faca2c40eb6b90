"""Run folder layout, crash-safe checkpoint writes and the resumable training state.

    runs/X/
      train_config.json     the TrainConfig of the run, its robots and (robot, task) pairs
      last/                 policy checkpoint (embodied.policy.checkpoint) + train_state.pt
      best/                 policy checkpoint with the lowest smoothed loss at a save point
      loss.csv, loss.png    loss curves
      adapters land in last/adapters/ (`embodied finetune --adapter-only`)

A checkpoint is written to `NAME.tmp/` and swapped in by renames (`NAME` -> `NAME.old`,
`NAME.tmp` -> `NAME`), so a run killed while saving keeps its previous checkpoint.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from embodied.errors import CorruptCheckpoint

LAST, BEST, STATE, CONFIG = "last", "best", "train_state.pt", "train_config.json"
MANIFEST = "manifest.json"


def write_atomic(folder: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp_folder) and swap the result in as `folder`."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def checkpoint_dir(run: str | Path, name: str = LAST) -> Path | None:
    """The run's checkpoint `name`, recovering one left as NAME.old by a crash mid-swap."""
    run = Path(run)
    for candidate in (run / name, run / (name + ".old")):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def resolve_policy(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its `last` checkpoint) -> the checkpoint folder."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    found = checkpoint_dir(path)
    if found is None:
        raise CorruptCheckpoint(f"no policy checkpoint at {path} (neither {path / MANIFEST} nor {path / LAST}/); "
                                "train one with `embodied train --out RUN`")
    return found


def trained_steps(run: str | Path) -> int:
    """Steps the run's last checkpoint holds (0: none yet), found as a resumed run finds it."""
    last = checkpoint_dir(run)
    return int(load_state(last)["step"]) if last is not None else 0


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    if not path.is_file():
        raise CorruptCheckpoint(f"{path} is missing: {folder} is a policy checkpoint without training state, "
                                "so the run cannot resume; start a new --out folder")
    return torch.load(path, map_location="cpu", weights_only=False)
