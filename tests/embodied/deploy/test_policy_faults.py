"""Policy checks (NaN, limits, jumps, latency) and their path through the fault monitor's
graded reactions (`Monitor.report`)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import robots
from embodied.deploy import PolicyLimits, PolicyWatch
from embodied.policy.io import ActionChunk, Observation
from firmware_bridge.monitor import Monitor, Reaction, Reading
from firmware_bridge.monitor.events import Finding
from firmware_bridge.state import BusState
from robots.safety import FAULT_KINDS, POLICY_FAULT_KINDS

ROBOT = robots.load("so100")
HOME = np.array([*ROBOT.home, 0.5], np.float32)
SERVOS = (0, 1, 2, 3, 4, 5)  # so100's bus order is robot.toml's


def obs(state=HOME) -> Observation:
    return Observation("so100", "pick up the red cube", state)


def watch(chunk: np.ndarray, delay: float = 0.0, latency: float = 1.0) -> PolicyWatch:
    def infer(o: Observation) -> ActionChunk:
        time.sleep(delay)
        return ActionChunk(chunk)

    return PolicyWatch(infer, PolicyLimits.of(ROBOT, SERVOS, latency, margin=0.1, jump=0.5))


def kinds(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return [(f.kind, f.index) for f in findings]


def test_each_tick_checks_nan_and_limits():
    w = watch(np.tile(HOME, (4, 1)))
    assert w.check(HOME) == []
    bad = HOME.copy()
    bad[2] = np.nan
    nan = w.check(bad)
    assert kinds(nan) == [("nan_action", None)] and "1 of 6" in nan[0].detail
    beyond = HOME.copy()
    beyond[0], beyond[5] = ROBOT.joints[0].range[1] + 0.05, 1.3  # within the margin; the gripper past it
    found = w.check(beyond)
    assert kinds(found) == [("action_limit", 5)] and found[0].value == pytest.approx(1.3) and found[0].threshold == 1.0


def test_chunks_are_checked_for_jumps_and_latency():
    far = np.tile(HOME, (4, 1))
    far[0, 1] += 0.8  # shoulder_lift lunges 0.8 rad away from where the arm is
    w = watch(far, delay=0.02, latency=0.01)
    assert w.infer(obs()).actions.shape == (4, 6)
    found = w.check(HOME)
    assert sorted(kinds(found), key=str) == [("action_jump", 1), ("inference_latency", None)]
    assert kinds(w.check(HOME)) == [("inference_latency", None)]  # a jump is reported once, latency until a fast one
    assert w.latencies[0] >= 0.02
    w.reset()
    assert w.check(HOME) == [] and w.latencies == []


def state(now: float) -> BusState:
    n = len(ROBOT.bus.servos)
    return BusState(tuple(s.id for s in ROBOT.bus.servos), np.array([*ROBOT.home, 0.75]), np.zeros(n), np.zeros(n),
                    np.full(n, 7.4), np.full(n, 30.0), np.zeros(n, np.uint8), ((),) * n, now)


def test_reported_findings_take_the_graded_reactions():
    assert set(POLICY_FAULT_KINDS) <= set(FAULT_KINDS)
    monitor = Monitor(ROBOT)
    safety = monitor.safety
    t = time.monotonic()

    def cycle(report: bool):
        nonlocal t
        t += 1 / 30
        if report:
            monitor.report(Finding("nan_action", None, 6.0, 0.0, "6 of 6 action values are not finite"))
        return monitor.check(Reading(t, state(t), command=np.array([*ROBOT.home, 0.75])))

    assert cycle(True).reaction == Reaction.HOLD
    verdicts = [cycle(True) for _ in range(safety.escalate_cycles)]
    assert verdicts[-1].reaction == Reaction.SLOW_STOP and verdicts[-1].cause == "nan_action"
    recovered = [cycle(False).reaction for _ in range(safety.recover_cycles)]  # the policy is fine again
    assert recovered[-2] == Reaction.SLOW_STOP and recovered[-1] == Reaction.NONE  # cleared with hysteresis
    whats = [e.what for e in monitor.events if e.kind == "nan_action"]
    assert whats == ["raised", "escalated", "cleared"] and monitor.counts["nan_action"] == 1
