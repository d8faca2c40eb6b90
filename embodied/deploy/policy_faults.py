"""Checks on the policy itself, every control tick of a deployment.

The bus checks of `firmware_bridge.monitor` see what the servos do; these see what the
policy asks for, before it is sent:

    nan_action          a non-finite action (a broken graph, bad statistics)
    action_limit        an action beyond the robot's joint ranges (or the gripper's [0, 1])
                        by more than a margin: the policy is out of its training distribution
    action_jump         a chunk whose first action lies far from the pose it was inferred
                        from: the arm would lunge (the monitor's clip would only slow it)
    inference_latency   the last inference took longer than its budget: the plan starves
                        and the arm acts on stale observations

Each is a `Finding` handed to the fault monitor (`Monitor.report`), which raises, escalates
and clears it by the robot's reactions table (`robots.safety.POLICY_FAULT_KINDS`), logs it
to the black box, and applies the reaction in the step that would have sent the action.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import robots
from embodied.policy.io import ActionChunk, Observation
from firmware_bridge.monitor.events import Finding

Infer = Callable[[Observation], ActionChunk]


@dataclass(frozen=True)
class PolicyLimits:
    """Thresholds of the policy checks.

    Attributes:
        low, high: action bounds: joint ranges [rad] (robot.toml order), then the gripper [0, 1].
        index: bus servo index of each action dimension (the servo an event names).
        margin: how far beyond the bounds an action may go before it is a fault [rad | opening].
        jump: largest distance [rad] of a chunk's first action from the pose it was inferred from.
        latency: inference budget [s].
    """

    low: np.ndarray
    high: np.ndarray
    index: tuple[int, ...]
    margin: float
    jump: float
    latency: float

    @classmethod
    def of(cls, robot: robots.RobotSpec, index: Sequence[int], latency: float, margin: float = 0.1,
           jump: float = 0.5) -> PolicyLimits:
        low = np.array([j.range[0] for j in robot.joints] + [0.0])
        high = np.array([j.range[1] for j in robot.joints] + [1.0])
        if len(index) != len(low):
            raise ValueError(f"{robot.name} has {len(low)} action dimensions, {len(index)} servo indices given")
        return cls(low, high, tuple(index), margin, jump, latency)


class PolicyWatch:
    """Wraps a policy's `infer` to time each chunk and measure its jump, and checks each
    tick's action. `infer` may run in a scheduler's background thread; `check` runs in
    the control loop.

    Args:
        infer: the policy (`PolicyEngine.infer`).
        limits: the thresholds.
        clock: [s], for latencies.
    """

    def __init__(self, infer: Infer, limits: PolicyLimits, clock: Callable[[], float] = time.perf_counter):
        self._infer, self.limits, self.clock = infer, limits, clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget chunks and latencies (a new episode)."""
        with self._lock:
            self._jumps: list[Finding] = []
            self.latencies: list[float] = []  # of every inference this episode [s]

    def infer(self, obs: Observation) -> ActionChunk:
        """`infer(obs)`, timed, its first action compared with `obs.state`."""
        started = self.clock()
        chunk = self._infer(obs)
        took = self.clock() - started
        joints = len(self.limits.low) - 1
        distance = np.abs(chunk.actions[0, :joints] - obs.state[:joints])
        jumps = [Finding("action_jump", self.limits.index[k], float(distance[k]), self.limits.jump)
                 for k in np.flatnonzero(distance > self.limits.jump)]
        with self._lock:
            self.latencies.append(took)
            self._jumps.extend(jumps)
        return chunk

    def check(self, action: np.ndarray) -> list[Finding]:
        """Findings of this tick for `action` (robot units), with the chunk-level ones that
        arrived since the last tick."""
        lim = self.limits
        action = np.asarray(action, dtype=float)
        with self._lock:
            found, self._jumps = self._jumps, []
            latency = self.latencies[-1] if self.latencies else 0.0
        bad = ~np.isfinite(action)
        if bad.any():
            found.append(Finding("nan_action", None, float(bad.sum()), 0.0,
                                 f"{int(bad.sum())} of {len(action)} action values are not finite"))
        beyond = (action < lim.low - lim.margin) | (action > lim.high + lim.margin)
        outside = np.flatnonzero(np.isfinite(action) & beyond)
        found += [Finding("action_limit", lim.index[k], float(action[k]),
                          float(lim.low[k] if action[k] < lim.low[k] else lim.high[k])) for k in outside]
        if latency > lim.latency:
            found.append(Finding("inference_latency", None, latency, lim.latency))
        return found
