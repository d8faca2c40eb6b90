"""The physics behind an emulated chain, handed in by the caller (firmware_bridge never
imports a simulator): joint setpoints in, joint positions and velocities out.

A MuJoCo scene of the robot can be a plant (see `embodied.sim_plant`); the default is a
first-order lag per joint, with no gravity: a joint without torque stays where it is.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Plant(Protocol):
    """Joint-space physics of a servo chain, joints in the bus spec's servo order."""

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Current joint positions [rad] and velocities [rad/s]."""
        ...

    def step(self, dt: float, setpoints_rad: np.ndarray, enabled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance `dt` [s] with each servo driving its joint toward `setpoints_rad` where
        `enabled` (torque on); a joint without torque is not driven. Returns `state()`."""
        ...


class FirstOrderPlant:
    """Each driven joint follows its setpoint with time constant `time_constant` [s];
    an undriven joint stops (friction, no gravity).

    Args:
        positions_rad: initial joint positions [rad].
        time_constant: lag of a driven joint behind its setpoint [s].
    """

    def __init__(self, positions_rad: np.ndarray, time_constant: float = 0.03):
        if time_constant <= 0:
            raise ValueError(f"time_constant must be > 0 [s], got {time_constant}")
        self.positions = np.array(positions_rad, dtype=float)
        self.velocities = np.zeros_like(self.positions)
        self.time_constant = time_constant

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.positions.copy(), self.velocities.copy()

    def step(self, dt: float, setpoints_rad: np.ndarray, enabled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if dt > 0:
            alpha = 1.0 - np.exp(-dt / self.time_constant)
            delta = np.where(enabled, (np.asarray(setpoints_rad) - self.positions) * alpha, 0.0)
            self.positions = self.positions + delta
            self.velocities = delta / dt
        return self.state()
