"""The fault monitor's checks: each a pure function of one cycle (`Context`) to findings.

`CHECKS` is the table the monitor runs every cycle; a check that needs the bus state
finds nothing when the read failed (its faults then neither clear nor escalate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.emulator.servo import PHYSICS
from firmware_bridge.monitor.events import Finding, Reading
from firmware_bridge.state import BusState
from firmware_bridge.tables import Reg, table_for
from robots.spec import RobotSpec
from robots.safety import SafetySpec

# hardware error bit name -> fault kind (other names: "servo_error")
ERROR_KINDS = {"overheating": "overheat", "overload": "overload", "overcurrent": "overload",
               "electrical shock": "overload", "input voltage": "voltage"}
JUMP_SLACK = 0.05  # position change between reads allowed on top of the velocity bound [rad]


@dataclass(frozen=True)
class Limits:
    """Per-servo limits in the bus's servo order.

    Attributes:
        ids, joints: servo ids and the joints they drive.
        low, high: joint range [rad] (the gripper servo: `SafetySpec.gripper_range`).
        max_velocity: [rad/s] (the gripper: the fastest joint's).
        effort_full: the effort reading of full load, in each model's unit ([fraction] or [A]).
        safe_pose: rest angle [rad], NaN where the servo stays where it is.
    """

    ids: tuple[int, ...]
    joints: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    max_velocity: np.ndarray
    effort_full: np.ndarray
    safe_pose: np.ndarray

    @classmethod
    def of(cls, robot: RobotSpec, safety: SafetySpec | None = None) -> Limits:
        if robot.bus is None:
            raise ValueError(f"robot {robot.name!r} has no servo bus to monitor")
        safety = safety or robot.safety
        joints = {j.name: j for j in robot.joints}
        fastest = max(j.max_velocity for j in robot.joints)
        low, high, vmax, full, safe = [], [], [], [], []
        for s in robot.bus.servos:
            j = joints.get(s.joint)
            lo, hi = j.range if j else safety.gripper_range
            low.append(lo), high.append(hi), vmax.append(j.max_velocity if j else fastest)
            model = table_for(s.model)
            full.append(1.0 if model.effort is Reg.PRESENT_LOAD else PHYSICS[model.name].stall_current)
            rest = safety.safe_pose.get(s.joint, j.home if j else np.nan)
            safe.append(min(max(rest, lo), hi) if np.isfinite(rest) else np.nan)
        return cls(tuple(s.id for s in robot.bus.servos), tuple(s.joint for s in robot.bus.servos),
                   *(np.array(v, dtype=float) for v in (low, high, vmax, full, safe)))


@dataclass(frozen=True)
class Context:
    """One cycle for the checks: the reading, the limits, and what the monitor remembers.

    Attributes:
        failures: consecutive failed reads, this one included.
        last_good: the previous good state (None before the first).
        nominal_voltage: each servo's first voltage reading [V].
        active: kinds active per servo index (for hysteresis).
    """

    reading: Reading
    limits: Limits
    safety: SafetySpec
    failures: int
    last_good: BusState | None
    nominal_voltage: np.ndarray | None
    active: frozenset[tuple[str, int | None]]


Check = Callable[[Context], list[Finding]]


def bus_timeout(c: Context) -> list[Finding]:
    if c.reading.state is not None:
        return []
    return [Finding("bus_timeout", None, c.failures, c.safety.escalate_cycles, c.reading.error)]


def stale(c: Context) -> list[Finding]:
    newest = c.reading.state or c.last_good
    age = c.reading.now - newest.timestamp if newest is not None else np.inf
    return [Finding("stale", None, age, c.safety.stale_after)] if age > c.safety.stale_after else []


def servo_errors(c: Context) -> list[Finding]:
    s = c.reading.state
    if s is None:
        return []
    return [Finding(ERROR_KINDS.get(name, "servo_error"), k, float(s.error_bits[k]), 0.0, name)
            for k, names in enumerate(s.errors) for name in names]


def temperature(c: Context) -> list[Finding]:
    s, warn = c.reading.state, c.safety.temperature_warn
    if s is None:
        return []
    out = []
    for k, t in enumerate(s.temperatures):
        limit = warn - c.safety.temperature_hysteresis if ("overheat", k) in c.active else warn
        if t >= limit:
            out.append(Finding("overheat", k, float(t), limit))
    return out


def voltage(c: Context) -> list[Finding]:
    s, nominal = c.reading.state, c.nominal_voltage
    if s is None or nominal is None:
        return []
    out = []
    for k, (v, v0) in enumerate(zip(s.voltages, nominal)):
        tolerance = c.safety.voltage_tolerance * (0.8 if ("voltage", k) in c.active else 1.0)
        if abs(v - v0) > tolerance * v0:
            out.append(Finding("voltage", k, float(v), float(v0)))
    return out


def position_limits(c: Context) -> list[Finding]:
    s, lim, tol = c.reading.state, c.limits, c.safety.position_tolerance
    if s is None:
        return []
    out = np.flatnonzero((s.positions < lim.low - tol) | (s.positions > lim.high + tol))
    return [Finding("position_limit", int(k), float(s.positions[k]),
                    float(lim.low[k] if s.positions[k] < lim.low[k] else lim.high[k])) for k in out]


def velocity_limits(c: Context) -> list[Finding]:
    s, bound = c.reading.state, c.limits.max_velocity * c.safety.velocity_factor
    if s is None:
        return []
    return [Finding("velocity_limit", int(k), float(s.velocities[k]), float(bound[k]))
            for k in np.flatnonzero(np.abs(s.velocities) > bound)]


def position_jumps(c: Context) -> list[Finding]:
    """A reading that moved further since the last good one than the joint can (an encoder glitch)."""
    s, prev = c.reading.state, c.last_good
    if s is None or prev is None:
        return []
    bound = c.limits.max_velocity * c.safety.velocity_factor * (s.timestamp - prev.timestamp) + JUMP_SLACK
    step = np.abs(s.positions - prev.positions)
    return [Finding("position_jump", int(k), float(step[k]), float(bound[k])) for k in np.flatnonzero(step > bound)]


def tracking(c: Context) -> list[Finding]:
    """Servos far from their command while torque is on and no error bit explains it (stall, collision)."""
    s, cmd = c.reading.state, c.reading.command
    if s is None or cmd is None or not c.reading.torque_expected:
        return []
    error = np.abs(s.positions - cmd)
    bad = np.flatnonzero((error > c.safety.tracking_error) & (s.error_bits == 0) & np.isfinite(cmd))
    return [Finding("tracking", int(k), float(error[k]), c.safety.tracking_error) for k in bad]


def overload(c: Context) -> list[Finding]:
    s = c.reading.state
    if s is None:
        return []
    load = np.abs(s.loads) / c.limits.effort_full
    return [Finding("overload", int(k), float(load[k]), c.safety.load_max)
            for k in np.flatnonzero(load >= c.safety.load_max)]


def torque_lost(c: Context) -> list[Finding]:
    """Servos found without torque that the controller left on, with no error bit that
    explains it (their own shutdown): a reset, a brownout."""
    s, torque = c.reading.state, c.reading.torque
    if s is None or torque is None or not c.reading.torque_expected:
        return []
    return [Finding("torque_lost", int(k), 0.0, 1.0) for k in np.flatnonzero((torque == 0) & (s.error_bits == 0))]


CHECKS: tuple[Check, ...] = (bus_timeout, stale, servo_errors, temperature, voltage, position_limits,
                             velocity_limits, position_jumps, tracking, overload, torque_lost)
# kinds raised only after they persisted `SafetySpec.confirm_cycles` (transients are normal)
CONFIRMED = frozenset({"tracking", "overload"})
