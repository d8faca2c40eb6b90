"""`ArmLayout`: a robot's state and action vectors <-> the servos of its bus.

A robot's vectors list its robot.toml joints in their order, then the gripper as an
opening in [0, 1]; a bus lists its servos in `[[bus.servos]]` order, the gripper as an
angle [rad] like every other servo. The layout finds each joint among the servos once and
converts both ways:

    state  = layout.observation(bus, bus.read_state().positions)
    bus.write_targets(layout.targets(bus, action))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_bridge.bus import ServoBus
from firmware_bridge.errors import ArmMismatch
from robots.spec import BusSpec, RobotSpec


@dataclass(frozen=True)
class ArmLayout:
    """Where each robot.toml joint and the gripper sit among a bus's servos.

    Attributes:
        robot: the robot spec.
        joint_index: for each robot.toml joint, its index in the bus's servo order.
        gripper_index: index of the gripper servo in the bus's servo order.
    """

    robot: RobotSpec
    joint_index: tuple[int, ...]
    gripper_index: int

    @classmethod
    def of(cls, bus: ServoBus | BusSpec, robot: RobotSpec) -> ArmLayout:
        """The layout of `robot` on `bus`; only the servo order is read, so a `BusSpec` will do.

        Raises:
            ArmMismatch: a robot.toml joint, or the gripper, that no servo of the bus drives.
        """
        driven = [s.joint for s in bus.servos]
        missing = [j for j in [*robot.joint_names, robot.gripper.joint] if j not in driven]
        if missing:
            raise ArmMismatch(robot.name, missing, driven)
        return cls(robot, tuple(driven.index(j) for j in robot.joint_names), driven.index(robot.gripper.joint))

    def observation(self, bus: ServoBus, positions_rad: np.ndarray) -> np.ndarray:
        """State vector: joint positions [rad] in robot.toml order, then gripper opening [0, 1]."""
        gripper = bus.calibration.servo(self.robot.gripper.joint).opening(float(positions_rad[self.gripper_index]))
        return np.append(positions_rad[list(self.joint_index)], gripper).astype(np.float32)

    def targets(self, bus: ServoBus, action: np.ndarray) -> np.ndarray:
        """Servo targets [rad] (bus order) of an action (joint targets [rad] in robot.toml
        order, then the gripper opening [0, 1]): the inverse of `observation`. An action with
        any non-finite value becomes all NaN, which the monitor's clip holds.

        The opening maps onto the gripper's calibrated range less the monitor's `limit_margin`
        at both ends: "closed" is the normal grasp command, not a limit violation to clip and log.
        """
        targets = np.full(len(bus.servos), np.nan)
        action = np.asarray(action, dtype=float)
        if np.isfinite(action).all():
            targets[list(self.joint_index)] = action[:-1]
            lo, hi = bus.calibration.servo(self.robot.gripper.joint).range_rad()
            margin = min(self.robot.safety.limit_margin, (hi - lo) / 4)
            opening = min(max(float(action[-1]), 0.0), 1.0)
            targets[self.gripper_index] = lo + margin + opening * (hi - lo - 2 * margin)
        return targets
