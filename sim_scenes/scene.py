"""A composed scene: one robot, the arena, one task's props; plus typed access to its state.

`build_scene` assembles the MjSpec (robot MJCF + arena + props) and compiles it. `Scene`
wraps model and data with the operations tasks, experts and the env need, so none of them
index qpos by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from robots import RobotSpec
from robots.mjcf import check, load_spec
from sim_scenes.arena import add_arena, look_at_xyaxes, physics_steps_per_control
from sim_scenes.props import Prop

if TYPE_CHECKING:
    from sim_scenes.tasks.base import Task


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    return mujoco.mj_name2id(model, kind, name)


@dataclass
class Scene:
    robot: RobotSpec
    model: mujoco.MjModel
    data: mujoco.MjData
    props: dict[str, Prop]
    n_substeps: int
    _arm_qadr: np.ndarray = field(init=False)
    _arm_act: np.ndarray = field(init=False)
    _grip_qadr: int = field(init=False)
    _grip_act: int = field(init=False)
    _robot_bodies: frozenset[int] = field(init=False)
    _finger_qadr: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        m, J, A = self.model, mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_ACTUATOR
        self._arm_qadr = np.array([m.jnt_qposadr[_id(m, J, n)] for n in self.robot.joint_names])
        self._arm_act = np.array([_id(m, A, n) for n in self.robot.joint_names])
        self._grip_qadr = int(m.jnt_qposadr[_id(m, J, self.robot.gripper.joint)])
        self._grip_act = _id(m, A, self.robot.gripper.joint)
        base = _id(m, mujoco.mjtObj.mjOBJ_BODY, "base")
        self._robot_bodies = frozenset(b for b in range(m.nbody) if self._is_descendant(b, base))
        self._finger_qadr = np.array([m.jnt_qposadr[j] for j in range(m.njnt) if m.jnt_bodyid[j] in self._robot_bodies
                                      and int(m.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_SLIDE)], dtype=int)

    def _is_descendant(self, body: int, ancestor: int) -> bool:
        while body > 0:
            if body == ancestor:
                return True
            body = int(self.model.body_parentid[body])
        return False

    @property
    def control_dt(self) -> float:
        return self.n_substeps * self.model.opt.timestep

    # --- robot -----------------------------------------------------------------------
    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self._arm_qadr].copy()

    def gripper_opening(self) -> float:
        """Measured gripper opening in [0, 1] (0 = closed)."""
        return float(self.robot.gripper.to_command(self.data.qpos[self._grip_qadr]))

    def state(self) -> np.ndarray:
        """Proprioception: arm joint positions [rad], then gripper opening [0, 1]."""
        return np.append(self.arm_q(), self.gripper_opening()).astype(np.float32)

    def reset_robot(self, q: np.ndarray, gripper: float = 1.0) -> None:
        """Put the arm at q with zero velocity and matching actuator targets."""
        mujoco.mj_resetData(self.model, self.data)
        key = _id(self.model, mujoco.mjtObj.mjOBJ_KEY, "home")
        if key >= 0:
            mujoco.mj_resetDataKeyframe(self.model, self.data, key)
        self.data.qpos[self._arm_qadr] = q
        g = self.robot.gripper.to_joint(gripper)
        self.data.qpos[self._finger_qadr] = g  # both coupled fingers
        self.apply_action(np.append(q, gripper))

    def apply_action(self, action: np.ndarray) -> None:
        """Set actuator targets from an action (arm targets [rad], gripper command [0, 1])."""
        self.data.ctrl[self._arm_act] = action[:-1]
        self.data.ctrl[self._grip_act] = self.robot.gripper.to_joint(float(action[-1]))

    def step(self) -> None:
        """Advance one control period."""
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)

    # --- props -----------------------------------------------------------------------
    def body_pos(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def body_yaw(self, name: str) -> float:
        R = self.data.body(name).xmat.reshape(3, 3)
        return float(np.arctan2(R[1, 0], R[0, 0]))

    def set_pose(self, name: str, pos, yaw: float) -> None:
        """Place a free body (cube) or a mocap body (bin, zone) at pos [m] with yaw [rad]."""
        quat = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        body = self.model.body(name)
        if body.mocapid[0] >= 0:
            self.data.mocap_pos[body.mocapid[0]] = pos
            self.data.mocap_quat[body.mocapid[0]] = quat
        else:
            adr = self.model.jnt_qposadr[body.jntadr[0]]
            self.data.qpos[adr:adr + 7] = [*pos, *quat]

    def place_camera(self, name: str, pos, lookat, fovy: float) -> None:
        """Move the world-fixed camera `name` to `pos` [m], looking at `lookat`, image up ~ world z."""
        cam = self.model.camera(name).id
        right, up = np.reshape(look_at_xyaxes(pos, lookat), (2, 3))
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, np.column_stack([right, up, np.cross(right, up)]).ravel())
        self.model.cam_pos[cam], self.model.cam_quat[cam], self.model.cam_fovy[cam] = pos, quat, fovy

    def set_color(self, name: str, rgba) -> None:
        body = self.model.body(name).id
        self.model.geom_rgba[self.model.geom_bodyid == body] = rgba

    def touching_robot(self, name: str) -> bool:
        """Whether any robot geom is in contact with the body `name`."""
        body = self.model.body(name).id
        for c in self.data.contact[: self.data.ncon]:
            b1, b2 = self.model.geom_bodyid[c.geom[0]], self.model.geom_bodyid[c.geom[1]]
            if (b1 == body and b2 in self._robot_bodies) or (b2 == body and b1 in self._robot_bodies):
                return True
        return False


def build_scene(robot: RobotSpec, task: "Task") -> Scene:
    """Compose the robot, the arena and the task's props into a compiled scene."""
    check(robot)
    spec = load_spec(robot)
    add_arena(spec, robot)
    props = task.build(spec)
    model = spec.compile()
    n_substeps, _ = physics_steps_per_control(robot.control_hz)
    return Scene(robot, model, mujoco.MjData(model), {p.name: p for p in props}, n_substeps)
