"""Video files: frames in, H.264 mp4 out (PyAV)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from embodied.errors import MediaError


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float, crf: int = 23) -> Path:
    """Encode uint8 RGB frames (H, W, 3; H and W even) to an mp4 at `fps` [Hz]."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise MediaError(f"no frames to write to {path}")
    h, w = first.shape[:2]
    if h % 2 or w % 2:
        raise MediaError(f"frame size {w}x{h} must be even for H.264; crop or pad the frames")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in itertools.chain([first], frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path

