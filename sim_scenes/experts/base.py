"""Scripted experts: Cartesian motions of the end effector, solved by IK at the control rate.

An expert is a sequence of phases. A phase computes its goal when it starts, from the
simulator state at that moment (privileged information: object poses), so small
disturbances during a grasp do not derail the rest of the plan. Every tick the expert
interpolates a top-down end-effector pose, solves IK warm-started from the previous
solution, and returns an action in the robot's action space.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim_scenes.errors import InvalidPace, UnreachableWorkspace
from sim_scenes.experts.ik import DifferentialIK
from sim_scenes.tasks import Instance
from sim_scenes.scene import Scene


def top_down(yaw: float) -> np.ndarray:
    """Rotation whose z-axis (approach) points down and x-axis (closing) has heading yaw [rad]."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


def wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def closest_yaw(candidates_base: float, period: float, reference: float) -> float:
    """The angle base + k*period closest to `reference`."""
    k = np.round((reference - candidates_base) / period)
    return float(candidates_base + k * period)


def smooth(tau: float) -> float:
    """Minimum-jerk time scaling on [0, 1]."""
    tau = min(max(tau, 0.0), 1.0)
    return tau**3 * (10 - 15 * tau + 6 * tau**2)


@dataclass
class Pose:
    pos: np.ndarray  # ee site position [m], world
    yaw: float  # heading of the closing axis [rad]


# `Expert.grip`: the fingers have moved once the measured opening (in [0, 1]) changed by
# GRIPPER_MOVED, and are still when it changes by less than GRIPPER_STILL in a control tick.
GRIPPER_MOVED, GRIPPER_STILL = 0.05, 0.01
GRIP_TIMEOUT = 0.5  # [s] the longest a grip waits (the fixed wait it replaces)


@dataclass
class Phase:
    """One step of an expert's plan, with gripper command `gripper` in [0, 1].

    Either an open-loop move to `goal()` (None: stay) over at least `min_time` [s], or, with
    `servo`, a closed-loop phase: every tick `servo(commanded_pose)` returns the next pose,
    or None when the phase is over.
    """

    goal: Callable[[], Pose] | None
    gripper: float
    min_time: float = 0.3
    joint_space: bool = False  # interpolate in joint space (first move from a non-top-down pose)
    servo: Callable[[Pose], Pose | None] | None = None


class Expert(ABC):
    """Base class: runs a queue of phases; subclasses build it in `plan()` and may extend
    it in `replan()` when it runs empty (closed-loop experts).

    `pace` scales every speed of the plan (1: the default, about 2 s to lift a cube; 0.5: half
    as fast, twice the frames per demonstration, closer to a human teleoperator).
    """

    def __init__(self, scene: Scene, instance: Instance, pace: float = 1.0):
        self.scene, self.instance, self.robot, self.pace = scene, instance, scene.robot, InvalidPace.check(pace)
        self.s = self.robot.workspace.object_size
        self.speed = 0.6 * self.robot.reach * pace  # Cartesian speed [m/s]
        self.hover = 4.0 * self.s  # travel height of the ee above the table [m]
        self.ik = DifferentialIK(scene.model, self.robot.joint_names, self.robot.ee_site, np.array(self.robot.home))
        self.q = scene.arm_q()
        self.gripper = 1.0
        self.queue: deque[Phase] = deque(self.plan())
        self.phase: Phase | None = None
        self.done = False

    @abstractmethod
    def plan(self) -> list[Phase]: ...

    def replan(self) -> list[Phase]:
        """Phases to run once the queue is empty; [] ends the expert."""
        return []

    # --- geometry helpers used by plans ------------------------------------------------
    def natural_yaw(self, xy) -> float:
        """Closing-axis heading that needs no wrist roll: perpendicular to the radial line."""
        return float(np.arctan2(xy[1], xy[0]) + np.pi / 2)

    def grasp_yaw(self, body: str) -> float:
        """Closing axis normal to a cube face, choosing the face closest to the natural yaw."""
        xy = self.scene.body_pos(body)[:2]
        return closest_yaw(self.scene.body_yaw(body), np.pi / 2, self.natural_yaw(xy))

    def above(self, body: str, z: float, yaw: float | None = None) -> Pose:
        p = self.scene.body_pos(body)
        return Pose(np.array([p[0], p[1], z]), self.grasp_yaw(body) if yaw is None else yaw)

    def pose(self) -> Pose:
        """Commanded ee pose (forward kinematics of the last IK solution)."""
        pos, rot = self.ik.forward(self.q)
        return Pose(pos, float(np.arctan2(rot[1, 0], rot[0, 0])))

    def gap_command(self, gap: float) -> float:
        """Gripper command for a finger gap [m] (the gripper joint is each finger's travel)."""
        g = self.robot.gripper
        return float(np.clip(g.to_command(g.closed + np.sign(g.open - g.closed) * gap / 2), 0.0, 1.0))

    def grip(self, command: float) -> Phase:
        """Command the gripper and stay until its fingers have moved and stopped (closed on
        the cube, or opened), at most GRIP_TIMEOUT: the wait ends on what the robot's state
        shows. A timed wait would show a policy several identical states (arm still, fingers
        still) with different futures, wait or lift; a policy that reads its state in such a
        hold cannot tell how long it has waited, and waits forever."""
        readings: list[float] = []

        def hold(pose: Pose) -> Pose | None:
            readings.append(self.scene.gripper_opening())
            moved = abs(readings[-1] - readings[0]) > GRIPPER_MOVED
            still = len(readings) >= 2 and abs(readings[-1] - readings[-2]) < GRIPPER_STILL
            timeout = len(readings) * self.scene.control_dt >= GRIP_TIMEOUT
            return None if (moved and still) or timeout else pose

        return Phase(None, command, servo=hold)

    def lift_to(self, z: float, gripper: float) -> Phase:
        return Phase(lambda: Pose(np.array([*self.pose().pos[:2], z]), self.pose().yaw), gripper)

    # --- execution ----------------------------------------------------------------------
    def _begin(self, phase: Phase) -> None:
        self.phase, self._t, self._to_q = phase, 0.0, None
        self._from_q, self._from = self.q.copy(), self.pose()
        if phase.servo:
            return
        self._to = phase.goal() if phase.goal else self._from
        if phase.joint_space:
            res = self.ik.solve(self.q, self._to.pos, top_down(self._to.yaw), iterations=300)
            if not res.converged:
                raise UnreachableWorkspace(self.robot.name, str(self.robot.root / "robot.toml"), self._to.pos, res.pos_error)
            self._to_q = res.q
            vmax = np.array([j.max_velocity for j in self.robot.joints])
            self._duration = max(phase.min_time / self.pace,
                                 float(np.max(np.abs(res.q - self.q) / (0.35 * vmax * self.pace))))
        else:
            dist = float(np.linalg.norm(self._to.pos - self._from.pos))
            turn = abs(wrap(self._to.yaw - self._from.yaw))
            self._duration = max(phase.min_time / self.pace, dist / self.speed, turn / (2.0 * self.pace))

    def _next_phase(self) -> bool:
        if not self.queue:
            self.queue.extend(self.replan())
        if not self.queue:
            self.done, self.phase = True, None
            return False
        self._begin(self.queue.popleft())
        return True

    def _track(self, pose: Pose) -> None:
        self.q = self.ik.solve(self.q, pose.pos, top_down(pose.yaw), iterations=15).q

    def act(self) -> np.ndarray:
        """Next action: arm joint targets [rad] and gripper command [0, 1]."""
        while not self.done:
            if self.phase is None and not self._next_phase():
                break
            phase = self.phase
            self.gripper = phase.gripper
            if phase.servo:
                pose = phase.servo(self.pose())
                if pose is None:
                    self.phase = None
                    continue
                self._track(pose)
                break
            self._t += self.scene.control_dt
            a = smooth(self._t / self._duration)
            if self._to_q is not None:
                self.q = self._from_q + a * (self._to_q - self._from_q)
            else:
                yaw = self._from.yaw + a * wrap(self._to.yaw - self._from.yaw)
                self._track(Pose(self._from.pos + a * (self._to.pos - self._from.pos), yaw))
            if self._t >= self._duration:
                self.phase = None
            break
        return np.append(self.q, self.gripper)
