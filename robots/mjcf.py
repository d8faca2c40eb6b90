"""MJCF side of a robot: load its model and check it against robot.toml.

This is the only module of `robots` that imports mujoco, and it does so lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robots.errors import ModelMismatch
from robots.spec import RobotSpec

if TYPE_CHECKING:
    import mujoco

_JOINT_TYPES = {"hinge": 3, "slide": 2}  # mjtJoint values
RANGE_TOL = 1e-6


def load_spec(robot: RobotSpec) -> "mujoco.MjSpec":
    """The robot's MJCF as an editable MjSpec (scenes add to it)."""
    import mujoco

    try:
        return mujoco.MjSpec.from_file(str(robot.mjcf))
    except Exception as e:  # mujoco raises ValueError with the parser message
        raise ModelMismatch(str(robot.mjcf), "<file>", f"MuJoCo cannot load the model ({e})", "fix the MJCF") from e


def check(robot: RobotSpec, model: "mujoco.MjModel | None" = None) -> "mujoco.MjModel":
    """Compile the robot model and verify it agrees with the spec; return the model.

    Checks: a root body named `base`; every spec joint exists with the same kind and range; an actuator named after
    each joint and after the gripper joint; the ee site; every wrist camera; and, if the
    model has a `home` keyframe, that it equals the spec's home pose.
    """
    import mujoco

    if model is None:
        model = load_spec(robot).compile()
    toml = str(robot.root / "robot.toml")

    def need(kind: int, name: str, field: str, what: str) -> int:
        idx = mujoco.mj_name2id(model, kind, name)
        if idx < 0:
            raise ModelMismatch(toml, field, f"{what} {name!r} is in robot.toml but not in {robot.mjcf.name}",
                                "add it to the MJCF or fix the name in robot.toml")
        return idx

    for i, joint in enumerate(robot.joints):
        j = need(mujoco.mjtObj.mjOBJ_JOINT, joint.name, f"joints[{i}].name", "joint")
        if int(model.jnt_type[j]) != _JOINT_TYPES[joint.kind]:
            raise ModelMismatch(toml, f"joints[{i}].kind", f"joint {joint.name!r} is {joint.kind} in robot.toml but not in the MJCF", "make the kinds agree")
        if not np.allclose(model.jnt_range[j], joint.range, atol=RANGE_TOL):
            raise ModelMismatch(
                toml, f"joints[{i}].range", f"joint {joint.name!r} has range {list(joint.range)} in robot.toml but {model.jnt_range[j].tolist()} in the MJCF",
                "make the limits agree (robot.toml is the source of truth)",
            )
        need(mujoco.mjtObj.mjOBJ_ACTUATOR, joint.name, f"joints[{i}].name", "actuator")
    need(mujoco.mjtObj.mjOBJ_JOINT, robot.gripper.joint, "gripper.joint", "gripper joint")
    need(mujoco.mjtObj.mjOBJ_ACTUATOR, robot.gripper.joint, "gripper.joint", "gripper actuator")
    need(mujoco.mjtObj.mjOBJ_SITE, robot.ee_site, "ee_site", "end-effector site")
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base") < 0:
        raise ModelMismatch(str(robot.mjcf), "<body name='base'>", "the model has no body named 'base'; scenes find the "
                            "robot's parts as the subtree of 'base'", "name the robot's root body 'base'")
    for i, cam in enumerate(robot.cameras):
        if cam.mount == "wrist":
            need(mujoco.mjtObj.mjOBJ_CAMERA, cam.name, f"cameras[{i}].name", "wrist camera")
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        for i, joint in enumerate(robot.joints):
            adr = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint.name)]
            if abs(model.key_qpos[key, adr] - joint.home) > 1e-4:
                raise ModelMismatch(toml, f"joints[{i}].home", f"home {joint.home} differs from the MJCF 'home' keyframe ({model.key_qpos[key, adr]:.4f})", "make them agree")
    return model
