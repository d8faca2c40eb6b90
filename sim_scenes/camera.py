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

from sim_scenes.errors import InvalidCameraJitter


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


# How far a randomized scene camera strays from its robot.toml pose at jitter 1 (`jittered_view`).
DISTANCE_FACTOR = (0.7, 1.8)  # distance to the point looked at, times this (log-uniform)
AZIMUTH = 25.0  # [deg] +- around the vertical through the point looked at
ELEVATION = 12.0  # [deg] +-, kept within ELEVATION_LIMITS
ELEVATION_LIMITS = (5.0, 85.0)  # [deg]
LOOKAT_SHIFT = 0.1  # the point looked at moves up to this times the camera's distance, in x and y
FOVY_FACTOR = 0.15  # vertical field of view times 1 +- this


def jittered_view(pos, lookat, fovy: float, rng: np.random.Generator,
                  jitter: float) -> tuple[np.ndarray, np.ndarray, float]:
    """A random camera pose near (pos, lookat, fovy): the camera orbits the point it looks at
    (distance, azimuth, elevation), that point shifts on the table, the field of view widens
    or narrows; `jitter` in [0, 1] scales every range (0: the pose itself).

    Why: a policy pretrained on a few fixed views learns where objects appear in them, not
    what they look like; a new arm's cameras then see the objects elsewhere and at another
    size (ur5e's 4 cm cubes are 3 px wide at 1.4 m and 96 px). Demonstrations from jittered
    views teach the image side to find the named object at any scale and place."""
    InvalidCameraJitter.check(jitter)
    pos, lookat = np.asarray(pos, np.float64), np.asarray(lookat, np.float64)
    if jitter == 0.0:
        return pos, lookat, fovy
    offset = pos - lookat
    nominal = float(np.linalg.norm(offset))
    azimuth = math.atan2(offset[1], offset[0])
    elevation = math.degrees(math.asin(offset[2] / nominal))
    u = rng.uniform(-1.0, 1.0, size=6) * jitter
    lo, hi = (math.log(f) for f in DISTANCE_FACTOR)
    distance = nominal * math.exp((lo + hi) / 2 * jitter + u[0] * (hi - lo) / 2)
    azimuth += math.radians(u[1] * AZIMUTH)
    elevation = math.radians(float(np.clip(elevation + u[2] * ELEVATION, *ELEVATION_LIMITS)))
    lookat = lookat + np.array([u[3], u[4], 0.0]) * LOOKAT_SHIFT * nominal
    direction = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                          math.sin(elevation)])
    return lookat + distance * direction, lookat, fovy * (1.0 + u[5] * FOVY_FACTOR)
