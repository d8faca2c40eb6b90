"""The arena every task scene shares: floor, table, lights, physics and render options,
and the robot's scene cameras (robot-specific poses from robot.toml)."""

from __future__ import annotations

import mujoco
import numpy as np

from robots import RobotSpec

TIMESTEP = 0.002  # nominal physics step [s]; adjusted so a control period is a whole number of steps
PROP_CONTYPE, PROP_CONAFFINITY = 1, 3  # collide with each other and with robot geoms (contype 2)


def physics_steps_per_control(control_hz: float) -> tuple[int, float]:
    """Whole number of physics steps per control period, and the timestep [s] that makes it exact."""
    n = int(np.ceil(1.0 / (control_hz * TIMESTEP)))
    return n, 1.0 / (control_hz * n)


def look_at_xyaxes(pos, lookat) -> list[float]:
    """MuJoCo camera `xyaxes` for a camera at `pos` looking at `lookat`, image up ~ world z."""
    forward = np.asarray(lookat, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image up = +x (away from the robot)
        right = np.array([0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return [*right, *up]


def add_arena(spec: mujoco.MjSpec, robot: RobotSpec) -> None:
    """Add floor, table, lights and scene cameras to a robot's MjSpec, and set options."""
    n, dt = physics_steps_per_control(robot.control_hz)
    spec.option.timestep = dt
    spec.option.integrator = int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)
    spec.option.cone = int(mujoco.mjtCone.mjCONE_ELLIPTIC)
    spec.option.impratio = 10.0
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.quality.numslices = 12  # coarser capsules and cylinders: software rendering is fill- and vertex-bound
    spec.visual.quality.numstacks = 6
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]

    reach = robot.reach
    world = spec.worldbody
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3 * reach, 3 * reach, 0.05],
                   pos=[0, 0, -0.75], rgba=[0.35, 0.37, 0.4, 1], contype=0, conaffinity=0)
    # Table top at z = 0 under the robot base and the workspace, extending past the reach.
    half = [0.75 * reach + 0.1, 1.0 * reach + 0.1, 0.02]
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=half, pos=[0.6 * reach, 0, -half[2]],
                   rgba=[0.72, 0.6, 0.45, 1], friction=[1.0, 0.005, 0.0001],
                   contype=PROP_CONTYPE, conaffinity=PROP_CONAFFINITY)
    world.add_light(name="key", pos=[0.4 * reach, -0.6 * reach, 2.0 * reach + 0.5], dir=[-0.1, 0.3, -1],
                    diffuse=[0.6, 0.6, 0.6], castshadow=False)
    world.add_light(name="fill", pos=[-0.5 * reach, 0.6 * reach, 1.5 * reach + 0.5], dir=[0.3, -0.3, -1],
                    diffuse=[0.3, 0.3, 0.3], castshadow=False)
    for cam in robot.cameras:
        if cam.mount == "scene":
            world.add_camera(name=cam.name, pos=list(cam.pos), xyaxes=look_at_xyaxes(cam.pos, cam.lookat), fovy=cam.fovy)
    # An overview camera for videos a person watches, not part of the observation.
    c = robot.workspace.center
    view_pos = [c[0] + 0.9 * reach, c[1] - 0.8 * reach, 0.75 * reach]
    world.add_camera(name="overview", pos=view_pos, xyaxes=look_at_xyaxes(view_pos, [c[0] * 0.6, 0, 0.3 * reach]), fovy=55)
