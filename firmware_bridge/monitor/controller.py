"""`SafeController`: one control step through the fault monitor, and a clean shutdown.

    with ServoBus(robot.bus, port) as bus, SafeController(bus, robot) as control:
        control.run(lambda t: trajectory(t), duration=30.0)   # Ctrl+C: brought to rest, not dropped

Each step: read_state -> monitor.check -> the reaction (a table: follow, hold, slow stop,
torque off) -> monitor.clip -> write_targets. Torque enable is read every
`torque_check_every` cycles and after every failed read, so a servo that reset (a
brownout) is found and re-enabled where it stands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from firmware_bridge.bus import ServoBus
from firmware_bridge.errors import BridgeError
from firmware_bridge.monitor.blackbox import BlackBox
from firmware_bridge.monitor.core import Monitor
from firmware_bridge.monitor.events import Reaction, Reading, Verdict
from firmware_bridge.state import BusState
from firmware_bridge.tables import Reg
from robots.spec import RobotSpec
from robots.safety import SafetySpec

log = logging.getLogger(__name__)

# faults after which the arm holds where it is, not at its last command (it cannot get there)
HOLD_AT_PRESENT = frozenset({"tracking", "overload", "position_limit", "torque_lost"})
SHUTDOWN_SLACK = 2.0  # time a shutdown move may take beyond distance / slow speed [s]
REST_TOLERANCE = 0.002  # commands this close to the safe pose are there (written targets are whole ticks) [rad]


@dataclass(frozen=True)
class Step:
    """What one control step did.

    Attributes:
        verdict: the monitor's decision.
        sent: the targets written [rad], None when nothing was written.
        state: the state read, None when the read failed.
        beyond_limits: joints whose written target lies outside the joint range (always 0).
    """

    verdict: Verdict
    sent: np.ndarray | None
    state: BusState | None
    beyond_limits: int = 0


@dataclass(frozen=True)
class RunSummary:
    """A finished `SafeController.run`: cycles, failed reads, written targets beyond the joint
    ranges, reactions applied [cycles per reaction name], and whether the loop ran to its end."""

    cycles: int
    failed_reads: int
    beyond_limits: int
    reactions: dict[str, int]
    completed: bool


# of a control tick: the longest a step's reads may take, retries included. It must hold a
# full state read and asking one lost reply again (`SafeController.start` warns when not):
# 12.9 ms of a 20 ms tick for the vx300s's 7 Dynamixels at 50 Hz and their factory return
# delay; at 0.4 no lost reply was ever asked again there, and one read in three failed.
READ_SHARE = 0.65


class SafeController:
    """A `ServoBus` driven through a `Monitor`.

    A step's reads (state, and torque enable every few cycles) ask again for lost replies
    only within `READ_SHARE` of a tick, so a late or lost reply costs that tick's reading
    (the monitor holds and logs it), not the control rate. Reads outside the loop (`start`)
    retry in full.

    Args:
        bus: a connected bus of `robot`.
        robot: the robot (limits, `[safety]`).
        monitor: the fault monitor (default: one for `robot` logging to `blackbox`).
        safety: overrides `robot.safety` for the default monitor.
        blackbox: black-box log of the default monitor.
        rate_hz: control rate [Hz] (default `robot.control_hz`).
        read_share: share of a tick a step's reads may take, retries included (None: every
            retry in full, for a bus whose reply timeout alone is longer than a tick).
        torque_check_every: read torque enable every this many cycles.
        clock: monotonic time [s].
    """

    def __init__(self, bus: ServoBus, robot: RobotSpec, monitor: Monitor | None = None,
                 safety: SafetySpec | None = None, blackbox: BlackBox | None = None, rate_hz: float | None = None,
                 read_share: float | None = READ_SHARE, torque_check_every: int = 5,
                 clock: Callable[[], float] = time.monotonic):
        self.bus, self.robot = bus, robot
        self.rate_hz = rate_hz or robot.control_hz
        self.read_budget = None if read_share is None else read_share / self.rate_hz  # [s]
        self.monitor = monitor or Monitor(robot, safety, self.rate_hz, blackbox, clock)
        self.safety = self.monitor.safety
        self.limits = self.monitor.limits
        self.torque_check_every = torque_check_every
        self.clock = clock
        self.command: np.ndarray | None = None  # last targets written [rad]
        self.torque_on = False
        self.latched_off = False  # torque cut by a reaction; resume() re-enables
        self.cycles = 0
        self._check_torque = True
        self._hold: np.ndarray | None = None
        self._reaction = Reaction.NONE
        self._at_rest = False
        self._stepped = clock()

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Enable torque where the arm stands (goal = present position)."""
        self.bus.torque(True)
        self.torque_on, self.latched_off = True, False
        first = self.command is None  # not a resume: the read budget is checked once
        self.command = self.bus.read_state().positions.copy()
        self.monitor.log("controller", "start", detail=f"rate {self.rate_hz:g} Hz")
        if first and self.read_budget is not None:
            self._check_read_budget()

    def _check_read_budget(self) -> None:
        """Log `read budget short` when a full state read and asking one lost reply again do
        not fit in the share of a tick a step may read for."""
        needed = self.bus.state_read_timeout() + self.bus.state_read_timeout(1)
        if needed > self.read_budget:
            detail = (f"a state read and asking one lost reply again take up to {1000 * needed:.1f} ms, more than "
                      f"the {1000 * self.read_budget:.1f} ms a {self.rate_hz:g} Hz step allows for reads: a lost "
                      "reply costs the step its state. Fix: set the servos' return delay to 0, raise the baud "
                      "rate, or lower the control rate")
            log.warning(detail)
            self.monitor.log("controller", "read budget short", detail=detail)

    def resume(self) -> None:
        """Re-enable torque after a latched torque-off, holding where the arm stands."""
        self.start()
        self.monitor.log("controller", "resumed")

    def __enter__(self) -> SafeController:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown(exc_type.__name__ if exc_type else "exit")

    # --- one step ----------------------------------------------------------------------
    def step(self, target_rad: np.ndarray) -> Step:
        """Read, check, react, write. `target_rad` in servo order; NaN entries hold."""
        started, missed = self.clock(), self.bus.missed_replies
        # the bus's clock, not `clock`
        give_up_at = None if self.read_budget is None else time.monotonic() + self.read_budget
        state, error = None, ""
        try:
            state = self.bus.read_state(give_up_at)
        except BridgeError as e:
            error = f"{type(e).__name__}: {e}"
        read_s = self.clock() - started
        torque = self._read_torque(state, give_up_at)
        reading = Reading(self.clock(), state, error, max(0, self.bus.missed_replies - missed), read_s, torque,
                          self.command, self.torque_on, self._at_rest)
        verdict = self.monitor.check(reading)
        if max(verdict.reaction, Reaction.RETRY) != max(self._reaction, Reaction.RETRY):  # retries: own events
            self.monitor.log("reaction", verdict.reaction.name.lower(), detail=verdict.cause or "clear",
                             t=reading.now)
        desired = ACTIONS[verdict.reaction](self, np.asarray(target_rad, dtype=float), verdict, state)
        self._reaction = verdict.reaction
        self.cycles += 1
        self._stepped = reading.now
        if desired is None or self.command is None or self.latched_off:
            return Step(verdict, None, state)
        if torque is not None and state is not None and np.any((torque == 0) & (state.error_bits == 0)):
            self._reenable()
        return self._send(verdict, desired, state)

    def _send(self, verdict: Verdict, desired: np.ndarray, state: BusState | None) -> Step:
        sent = self.monitor.clip(desired, self.command)
        try:
            sent = self.bus.write_targets(sent)
        except BridgeError as e:
            self.monitor.log("write", "failed", detail=str(e))
            return Step(verdict, None, state)
        self.command = sent
        beyond = int(np.count_nonzero((sent < self.limits.low) | (sent > self.limits.high)))
        return Step(verdict, sent, state, beyond)

    def _read_torque(self, state: BusState | None, give_up_at: float | None) -> np.ndarray | None:
        if state is None:
            self._check_torque = True
            return None
        if not (self._check_torque or self.cycles % self.torque_check_every == 0):
            return None
        try:
            values = self.bus.sync_read(Reg.TORQUE_ENABLE, give_up_at=give_up_at)
        except BridgeError:
            return None
        self._check_torque = False
        return np.array([values[i] for i in self.limits.ids])

    def _reenable(self) -> None:
        try:
            self.bus.torque(True)  # goal = present: the arm holds where it stands
            self.torque_on = True
            self.monitor.log("torque_lost", "reenabled", reaction="hold")
        except BridgeError as e:
            self.monitor.log("torque_lost", "reenable failed", detail=str(e))
        self._check_torque = True

    # --- reactions: each returns the targets to send (None: send nothing) --------------
    def _follow(self, target: np.ndarray, verdict: Verdict, state: BusState | None) -> np.ndarray | None:
        self._hold, self._at_rest = None, False
        return target

    def _hold_pose(self, target: np.ndarray, verdict: Verdict, state: BusState | None) -> np.ndarray | None:
        if self._hold is None or self._reaction != Reaction.HOLD:
            at_present = verdict.cause in HOLD_AT_PRESENT and state is not None
            self._hold = state.positions.copy() if at_present else self.command
        self._at_rest = False
        return self._hold

    def _slow_stop(self, target: np.ndarray, verdict: Verdict, state: BusState | None) -> np.ndarray | None:
        if self.command is None:
            return None
        dt = min(max(self.clock() - self._stepped, 1.0 / self.rate_hz), 0.1)
        self._at_rest = self._resting()
        return self._toward_safe(self.command, self.safety.slow_speed * dt)

    def _torque_off(self, target: np.ndarray, verdict: Verdict, state: BusState | None) -> np.ndarray | None:
        if not self.latched_off:
            try:
                self.bus.torque(False)
            except BridgeError as e:
                self.monitor.log("torque_off", "failed", detail=str(e))
                return None
            self.torque_on, self.latched_off = False, True
            self.monitor.log("controller", "torque off", reaction="torque_off", detail=verdict.cause)
        return None

    def _resting(self) -> bool:
        """Whether the last command is the safe pose (to a tick)."""
        return self.command is not None and bool(np.all(np.abs(self._toward_safe(self.command, np.inf)
                                                               - self.command) <= REST_TOLERANCE))

    def _toward_safe(self, command: np.ndarray, max_step: float) -> np.ndarray:
        """`command` moved toward the safe pose by at most `max_step` [rad] per joint."""
        safe = np.where(np.isfinite(self.limits.safe_pose), self.limits.safe_pose, command)
        return command + np.clip(safe - command, -max_step, max_step)

    # --- loop and shutdown -------------------------------------------------------------
    def run(self, targets: Callable[[float], np.ndarray], duration: float | None = None,
            shutdown: bool = True) -> RunSummary:
        """Step at `rate_hz` with `targets(t)` (t [s] since the start) for `duration` [s]
        (forever when None). Any exception, KeyboardInterrupt included, first brings the arm to
        rest (`shutdown`) and is then raised again."""
        period = 1.0 / self.rate_hz
        reactions: dict[str, int] = {}
        failed = beyond = cycles = 0
        t0 = next_tick = self.clock()
        try:
            while duration is None or next_tick - t0 < duration:
                pause = next_tick - self.clock()
                if pause > 0:
                    time.sleep(pause)
                result = self.step(targets(self.clock() - t0))
                cycles += 1
                failed += result.state is None
                beyond += result.beyond_limits
                name = result.verdict.reaction.name.lower()
                reactions[name] = reactions.get(name, 0) + 1
                next_tick = max(next_tick + period, self.clock() - period)  # no burst after a stall
        except BaseException as e:
            self.shutdown(type(e).__name__)
            raise
        if shutdown:
            self.shutdown("end")
        return RunSummary(cycles, failed, beyond, reactions, completed=True)

    def shutdown(self, reason: str = "shutdown") -> None:
        """Bring the arm to rest: commands move to the safe pose at the slow speed (through
        `monitor.clip`); torque stays on unless `SafetySpec.shutdown_torque_off`. Bus errors
        on the way are logged, never raised: a shutdown always finishes."""
        self.monitor.log("controller", "shutdown", detail=reason)
        if self.torque_on and not self.latched_off and self.command is not None:
            period = 1.0 / self.rate_hz
            span = np.nan_to_num(np.abs(self.limits.safe_pose - self.command)).max()
            deadline = self.clock() + span / self.safety.slow_speed + SHUTDOWN_SLACK
            while self.clock() < deadline:
                if self._resting():
                    break
                toward = self._toward_safe(self.command, self.safety.slow_speed * period)
                try:
                    self.command = self.bus.write_targets(self.monitor.clip(toward, self.command))
                except BridgeError as e:
                    self.monitor.log("shutdown", "write failed", detail=str(e))
                time.sleep(period)
            self.monitor.log("controller", "at rest", detail="safe pose")
        if self.safety.shutdown_torque_off and self.torque_on:
            try:
                self.bus.torque(False)
                self.torque_on = False
                self.monitor.log("controller", "torque off", reaction="torque_off", detail="shutdown")
            except BridgeError as e:
                self.monitor.log("shutdown", "torque off failed", detail=str(e))


ACTIONS: dict[Reaction, Callable[[SafeController, np.ndarray, Verdict, BusState | None], np.ndarray | None]] = {
    Reaction.NONE: SafeController._follow,
    Reaction.RETRY: SafeController._follow,
    Reaction.HOLD: SafeController._hold_pose,
    Reaction.SLOW_STOP: SafeController._slow_stop,
    Reaction.TORQUE_OFF: SafeController._torque_off,
}
