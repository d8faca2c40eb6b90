"""A MuJoCo task scene as the plant of an emulated servo chain (`firmware_bridge` never
imports MuJoCo; this adapter lives on the embodied side and is handed in).

Each servo drives the position actuator of its joint (actuators are named after their
joints); a servo without torque leaves its joint unactuated (the scene's models compensate
gravity, so a limp joint drifts only under contact and damping). The gripper servo's angle [rad] maps linearly onto the sim gripper joint:
0 rad is closed, `gripper_travel` rad fully open.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robots.spec import BusSpec
from sim_scenes.scene import Scene

GRIPPER_TRAVEL = 1.5  # servo angle [rad] from closed to fully open


class ScenePlant:
    """`firmware_bridge.emulator.Plant` over a compiled scene.

    Args:
        scene: the scene (robot reset and props placed by the caller).
        bus: the robot's bus spec; servo i drives the joint named by `bus.servos[i].joint`.
        gripper_travel: servo angle [rad] of a fully open gripper.
    """

    def __init__(self, scene: Scene, bus: BusSpec, gripper_travel: float = GRIPPER_TRAVEL):
        self.scene, self.gripper_travel = scene, gripper_travel
        m = scene.model
        joints = [m.joint(s.joint) for s in bus.servos]
        self._qadr = np.array([j.qposadr[0] for j in joints])
        self._dadr = np.array([j.dofadr[0] for j in joints])
        self._act = np.array([m.actuator(s.joint).id for s in bus.servos])
        self._gripper = np.array([s.joint == scene.robot.gripper.joint for s in bus.servos])
        self._gain = m.actuator_gainprm[self._act, 0].copy()
        self._bias = m.actuator_biasprm[self._act, 1:3].copy()
        self._carry = 0.0  # time not yet simulated [s]

    def _to_servo(self, q: np.ndarray) -> np.ndarray:
        opening = np.array([self.scene.robot.gripper.to_command(x) for x in q])
        return np.where(self._gripper, opening * self.gripper_travel, q)

    def _to_joint(self, angles: np.ndarray) -> np.ndarray:
        g = self.scene.robot.gripper
        return np.array([g.to_joint(a / self.gripper_travel) if grip else a
                         for a, grip in zip(angles, self._gripper)])

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.scene.data
        scale = np.where(self._gripper, self.gripper_travel / (self.scene.robot.gripper.open
                                                               - self.scene.robot.gripper.closed), 1.0)
        return self._to_servo(d.qpos[self._qadr]), d.qvel[self._dadr] * scale

    def step(self, dt: float, setpoints_rad: np.ndarray, enabled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, d = self.scene.model, self.scene.data
        d.ctrl[self._act] = self._to_joint(np.asarray(setpoints_rad))
        m.actuator_gainprm[self._act, 0] = np.where(enabled, self._gain, 0.0)
        m.actuator_biasprm[self._act, 1:3] = np.where(enabled[:, None], self._bias, 0.0)
        self._carry += dt
        n = int(self._carry / m.opt.timestep)
        if n:
            mujoco.mj_step(m, d, nstep=n)
            self._carry -= n * m.opt.timestep
        return self.state()


def scene_plant(robot: str, task: str, seed: int = 0) -> ScenePlant:
    """The plant of `robot` in a seeded instance of `task`, at the robot's home pose."""
    from sim_scenes.env import TaskEnv

    env = TaskEnv(task, robot, images=False)
    env.reset(seed=seed)
    if env.robot.bus is None:
        raise ValueError(f"robot {robot!r} has no [bus] in its robot.toml")
    return ScenePlant(env.scene, env.robot.bus)
