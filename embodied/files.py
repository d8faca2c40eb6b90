"""Files written whole, for caches that several processes share."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np


def save_array(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` (.npy) through a temporary file beside it and a rename, so a
    process reading the folder meanwhile finds the whole file or none; the temporary file is
    removed when writing fails (the error propagates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
