"""Where world points appear in a camera image: the pinhole projection MuJoCo renders with.

Image coordinates are normalized to [-1, 1]: x from the left edge to the right, y from the
top row to the bottom (the layout of `mujoco.Renderer` images, and of the policies'
keypoint maps, `embodied.policy.encoders.map_coordinates`).

A MuJoCo camera looks along its frame's -z axis with +y up; `fovy` is its vertical field of
view, and the horizontal one follows from the image's aspect ratio.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np


def project(model: mujoco.MjModel, data: mujoco.MjData, camera: str, points: np.ndarray,
            width: int, height: int) -> np.ndarray:
    """World points float[N, 3] [m] -> float32[N, 2] normalized image coordinates in `camera`
    rendered at width x height; NaN for points behind the camera or outside the image."""
    cam = model.camera(camera)
    pos, rot = data.cam_xpos[cam.id], data.cam_xmat[cam.id].reshape(3, 3)
    local = (np.asarray(points, np.float64).reshape(-1, 3) - pos) @ rot  # camera frame: rot's columns are its axes
    depth = -local[:, 2]
    tan = math.tan(math.radians(float(model.cam_fovy[cam.id])) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = local[:, 0] / depth / (tan * width / height)
        y = -local[:, 1] / depth / tan
    xy = np.stack([x, y], axis=-1).astype(np.float32)
    hidden = (depth <= 0) | (np.abs(xy) > 1.0).any(axis=-1)
    xy[hidden] = np.nan
    return xy
