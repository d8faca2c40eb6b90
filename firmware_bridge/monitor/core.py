"""`Monitor`: runs the checks every cycle, keeps the state of each fault (raised, escalated,
cleared with hysteresis), picks the graded reaction, clips every command, and logs every
event to the black box.

    monitor = Monitor(robot, blackbox=BlackBox.create("out/blackbox", robot.name))
    verdict = monitor.check(reading)              # -> Verdict(reaction, cause, active, events)
    sent = monitor.clip(targets, last_command)    # the one place commands are clipped
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.monitor.blackbox import BlackBox
from firmware_bridge.monitor.checks import CHECKS, CONFIRMED, Context, Limits
from firmware_bridge.monitor.events import (COMMAND_JUMP, COMMAND_LIMIT, LATENCY, RETRY, Event, Finding, Reaction,
                                            Reading, Verdict)
from firmware_bridge.state import BusState
from robots.spec import RobotSpec
from robots.safety import SafetySpec

Key = tuple[str, int | None]  # (fault kind, servo index or None for the bus)
# kinds whose checks still run when the read failed (all others freeze until a good read)
WITHOUT_STATE = frozenset({"bus_timeout", "stale"})


@dataclass
class _Fault:
    """The state of one active fault."""

    raised: float  # [s] monotonic
    stage: int = 0  # index into the kind's reactions
    persisted: int = 0  # consecutive cycles present since the last stage change
    clear: int = 0  # consecutive good cycles absent
    finding: Finding | None = None


class Monitor:
    """Fault monitor of one robot's bus.

    Args:
        robot: joints, limits, bus (servo order) and `[safety]` configuration.
        safety: overrides `robot.safety`.
        rate_hz: control rate [Hz] that bounds the command step (default `robot.control_hz`).
        blackbox: where events are logged (none: kept in memory only).
        clock: monotonic time [s] for clip events.
    """

    def __init__(self, robot: RobotSpec, safety: SafetySpec | None = None, rate_hz: float | None = None,
                 blackbox: BlackBox | None = None, clock: Callable[[], float] = time.monotonic):
        self.robot = robot
        self.safety = safety or robot.safety
        self.limits = Limits.of(robot, self.safety)
        self.rate_hz = rate_hz or robot.control_hz
        self.max_step = self.safety.step_factor * self.limits.max_velocity / self.rate_hz  # [rad] per cycle
        self.blackbox = blackbox
        self.clock = clock
        self.events: list[Event] = []
        self.counts: Counter[str] = Counter()  # events per kind ("raised" / "occurred" / "clipped" ones)
        self.faults: dict[Key, _Fault] = {}
        self._seen: Counter[Key] = Counter()
        self._failures = 0
        self._last_good: BusState | None = None
        self._nominal_voltage: np.ndarray | None = None
        self._reported: list[Finding] = []

    # --- logging -----------------------------------------------------------------------
    def log(self, kind: str, what: str, index: int | None = None, reaction: str = "", value: float | None = None,
            threshold: float | None = None, detail: str = "", t: float | None = None) -> Event:
        """Record one event (black box and memory)."""
        event = Event(self.clock() if t is None else t, kind, what,
                      None if index is None else self.limits.ids[index],
                      "" if index is None else self.limits.joints[index], reaction,
                      None if value is None else round(float(value), 6),
                      None if threshold is None else round(float(threshold), 6), detail)
        self.events.append(event)
        if what in ("raised", "occurred", "clipped"):
            self.counts[kind] += 1
        if self.blackbox is not None:
            self.blackbox.write(event)
        return event

    # --- every cycle -------------------------------------------------------------------
    def report(self, finding: Finding) -> None:
        """A finding from outside the bus (the deploy loop's policy and camera checks, kinds
        `robots.safety.POLICY_FAULT_KINDS`), taken into the next `check` like its own: raised,
        escalated and cleared by the same reactions table."""
        self._reported.append(finding)

    def check(self, reading: Reading) -> Verdict:
        """Run every check on `reading`, update the faults, return the reaction to apply."""
        first = len(self.events)
        state = reading.state
        self._failures = 0 if state is not None else self._failures + 1
        if state is not None and self._nominal_voltage is None:
            self._nominal_voltage = state.voltages.copy()
        context = Context(reading, self.limits, self.safety, self._failures, self._last_good,
                          self._nominal_voltage, frozenset(self.faults))
        findings: dict[Key, Finding] = {}
        for check in CHECKS:
            for f in check(context):
                findings.setdefault((f.kind, f.index), f)
        for f in self._reported:
            findings.setdefault((f.kind, f.index), f)
        self._reported.clear()
        if reading.missed:
            self.log(RETRY, "occurred", reaction="retry", value=reading.missed, detail="replies asked again",
                     t=reading.now)
        if reading.read_s > self.safety.latency_max:
            self.log(LATENCY, "occurred", reaction="retry", value=reading.read_s, threshold=self.safety.latency_max,
                     t=reading.now)
        self._update(findings, reading)
        if state is not None:
            self._last_good = state
        reaction, cause = self._reaction()
        if reaction < Reaction.RETRY and len(self.events) > first:
            reaction = Reaction.RETRY if any(e.what == "occurred" for e in self.events[first:]) else reaction
        return Verdict(reaction, cause, tuple((k, None if i is None else self.limits.ids[i]) for k, i in self.faults),
                       tuple(self.events[first:]))

    def _update(self, findings: dict[Key, Finding], reading: Reading) -> None:
        s, now = self.safety, reading.now
        for key in list(self._seen):
            if key not in findings and not self._unseeable(key, reading):
                del self._seen[key]
        for key, f in findings.items():
            self._seen[key] += 1
            fault = self.faults.get(key)
            if fault is None:
                if self._seen[key] >= (s.confirm_cycles if f.kind in CONFIRMED else 1):
                    self.faults[key] = _Fault(now, finding=f)
                    self.log(f.kind, "raised", f.index, self._stage_name(key), f.value, f.threshold, f.detail, now)
                continue
            fault.clear, fault.finding = 0, f
            fault.persisted += 1
            chain = s.reactions_for(f.kind)
            waiting_for_rest = chain[fault.stage] == "slow_stop" and not reading.at_rest
            if fault.stage + 1 < len(chain) and fault.persisted >= s.escalate_cycles and not waiting_for_rest:
                fault.stage, fault.persisted = fault.stage + 1, 0
                self.log(f.kind, "escalated", f.index, chain[fault.stage], f.value, f.threshold, f.detail, now)
        for key, fault in list(self.faults.items()):
            if key in findings or self._unseeable(key, reading):
                continue
            fault.clear += 1
            fault.persisted = 0  # escalation counts consecutive cycles: a cycle without it ends the run
            if fault.clear >= s.recover_cycles:
                del self.faults[key]
                self.log(key[0], "cleared", key[1], "", detail=f"after {now - fault.raised:.3f} s", t=now)

    @staticmethod
    def _unseeable(key: Key, reading: Reading) -> bool:
        """Whether this cycle could not have seen `key`'s fault: a lost read shows no state,
        so it neither clears a raised fault nor breaks a confirmation streak (on a flaky bus
        a 0.4 s overload would otherwise never persist `confirm_cycles` reads in a row)."""
        return reading.state is None and key[0] not in WITHOUT_STATE

    def _stage_name(self, key: Key) -> str:
        fault = self.faults.get(key)
        return self.safety.reactions_for(key[0])[fault.stage if fault else 0]

    def _reaction(self) -> tuple[Reaction, str]:
        best, cause = Reaction.NONE, ""
        for key in self.faults:
            reaction = Reaction.named(self._stage_name(key))
            if reaction > best:
                best, cause = reaction, key[0]
        return best, cause

    # --- commands ----------------------------------------------------------------------
    def clip(self, target_rad: np.ndarray, previous_rad: np.ndarray) -> np.ndarray:
        """The command to send toward `target_rad` from the last one sent: inside the joint
        ranges (less `limit_margin`) and no step larger than `max_step`; NaN targets hold.
        Every clip is logged ("command_limit", "command_jump"). Returns what may be sent [rad]."""
        lim, margin = self.limits, self.safety.limit_margin
        previous = np.asarray(previous_rad, dtype=float)
        target = np.where(np.isfinite(target_rad), np.asarray(target_rad, dtype=float), previous)
        inside = np.clip(target, lim.low + margin, lim.high - margin)
        for k in np.flatnonzero(inside != target):
            self.log(COMMAND_LIMIT, "clipped", int(k), "clip", target[k], inside[k])
        step = np.clip(inside - previous, -self.max_step, self.max_step)
        sent = np.clip(previous + step, lim.low + margin, lim.high - margin)
        for k in np.flatnonzero(np.abs(sent - inside) > 1e-12):
            self.log(COMMAND_JUMP, "clipped", int(k), "clip", inside[k] - previous[k], self.max_step[k])
        return sent
