"""The fault monitor and SafeController against an emulated so100 chain over a real pty,
with faults injected from profiles: detection, graded reactions, recovery, clipping, the
black box and a clean shutdown."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import robots
from embodied.cli import data as data_cli
from firmware_bridge.bus import ServoBus
from firmware_bridge.emulator import EmulatedChain, FaultInjector, parse_profile
from firmware_bridge.link import Timing
from firmware_bridge.monitor import BlackBox, Monitor, Reaction, SafeController, audit, read_blackbox
from firmware_bridge.monitor.events import Reading
from firmware_bridge.pacing import retry
from firmware_bridge.state import BusState
from firmware_bridge.tables import Reg
from robots.errors import SpecError
from robots.safety import SafetySpec

ROBOT = robots.load("so100")
HOME = np.array([*ROBOT.home, 0.5])
TIMING = Timing(margin=0.02)  # the emulator shares this interpreter (and CI cores)
FAST = dataclasses.replace(ROBOT.safety, slow_speed=3.0)  # short slow stops for tests


@contextlib.contextmanager
def rig(profile: str = "", safety: SafetySpec = FAST, blackbox: BlackBox | None = None, rate_hz: float = 40.0):
    injector = FaultInjector(parse_profile(profile))
    with EmulatedChain.from_bus_spec(ROBOT.bus, faults=injector, positions_rad=HOME) as chain:
        bus = ServoBus(ROBOT.bus, chain.port, TIMING)
        bus.connect()
        # TIMING's 20 ms reply margin (for loaded test machines) is longer than 65 % of a 40 Hz
        # tick: bounding the reads to the tick would leave no retries at all
        control = SafeController(bus, ROBOT, safety=safety, blackbox=blackbox, rate_hz=rate_hz, read_share=None)
        control.start()
        try:
            yield chain, injector, control
        finally:
            bus.disconnect()


def wave(t: float) -> np.ndarray:
    return HOME + 0.25 * np.sin(2 * np.pi * 0.3 * t + np.arange(6))


def steps(control: SafeController, seconds: float, t0: float | None = None):
    """Step at the controller's rate for `seconds`; yields each Step."""
    t0 = time.monotonic() if t0 is None else t0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield control.step(wave(time.monotonic() - t0))
        time.sleep(1.0 / control.rate_hz)


EVERY_KIND = """
seed = 2
[packets]
drop = 0.05
corrupt = 0.02
latency = 0.02
[[overheat]]
servo = 3
start = 0.2
rate = 60.0
peak = 66.0
end = 0.9
[[stall]]
servo = 2
start = 1.2
end = 1.8
[[overload]]
servo = 6
start = 2.0
end = 2.4
[[glitch]]
servo = 5
at = 2.7
[[disconnect]]
start = 3.0
end = 3.3
[[brownout]]
at = 3.6
"""


def test_every_injected_fault_is_detected_and_no_command_leaves_the_limits(tmp_path):
    box = BlackBox(tmp_path / "run.jsonl")
    # torque never cut by a reaction here, so the brownout's torque loss can be seen after it
    keep_torque = dataclasses.replace(FAST, reactions={k: tuple(r for r in chain if r != "torque_off")
                                                       for k, chain in FAST.reactions.items()})
    with rig(EVERY_KIND, keep_torque, blackbox=box) as (chain, injector, control):
        injector.stop_at = 4.0
        beyond = sum(s.beyond_limits for s in steps(control, 4.6))
        assert control.step(wave(0.0)).state is not None  # still running, bus back
    box.close()
    report = audit(injector.injected, control.monitor.events)
    assert set(report) >= {"drop", "corrupt", "latency", "overheat", "stall", "overload", "glitch", "disconnect",
                           "brownout"}
    missed = {kind: r for kind, r in report.items() if r["detected"] != r["injected"]}
    assert not missed, missed
    assert beyond == 0
    logged = read_blackbox(box.path)
    assert len(logged) == box.lines and logged[0]["kind"] == "run"
    assert {e["kind"] for e in logged} >= {"overheat", "overload", "position_jump", "bus_timeout", "torque_lost", "retry"}


def test_overheat_slow_stop_then_torque_off():
    profile = "[[overheat]]\nservo = 3\nstart = 0.0\nrate = 200.0\npeak = 66.0\n"
    safety = dataclasses.replace(FAST, reactions={**FAST.reactions, "overheat": ("slow_stop", "torque_off")})
    with rig(profile, safety) as (chain, injector, control):
        reactions = [s.verdict.reaction for s in steps(control, 1.5)]
        assert Reaction.SLOW_STOP in reactions and reactions[-1] == Reaction.TORQUE_OFF
        assert reactions.index(Reaction.SLOW_STOP) < reactions.index(Reaction.TORQUE_OFF)
        with chain.lock:  # brought to the safe pose before torque went off
            q = np.array([s.position_rad() for s in chain.servos])
            assert not any(s.torque_on for s in chain.servos)
        np.testing.assert_allclose(q[:5], ROBOT.home, atol=0.05)
        assert control.latched_off


def test_bus_timeout_retry_then_hold_then_recovery():
    with rig("[[disconnect]]\nstart = 0.3\nend = 0.8\n") as (chain, injector, control):
        seen = [s.verdict for s in steps(control, 1.8)]
    kinds = [(e.kind, e.what, e.reaction) for v in seen for e in v.events]
    assert ("bus_timeout", "raised", "retry") in kinds and ("bus_timeout", "escalated", "hold") in kinds
    assert kinds.index(("bus_timeout", "raised", "retry")) < kinds.index(("bus_timeout", "escalated", "hold"))
    assert ("bus_timeout", "cleared", "") in kinds
    assert seen[-1].reaction <= Reaction.RETRY and not seen[-1].active  # resumed
    assert np.abs(control.command - wave(1.8)).max() < 0.6  # following the trajectory again


@pytest.mark.parametrize("name", [n for n in robots.available() if robots.load(n).bus is not None])
def test_every_arm_can_ask_a_lost_reply_again_within_its_step(name):
    """At its own control rate each arm's step has time for a full state read and for asking
    one lost reply again; at three times the rate the controller says that it has not."""
    spec = robots.load(name)
    with EmulatedChain.from_bus_spec(spec.bus) as chain:
        bus = ServoBus(spec.bus, chain.port)  # the real timing, whose budget is checked
        retry(bus.connect)  # as a deployment does: on a loaded machine the emulator's thread can miss a ping
        for rate, warned in ((spec.control_hz, False), (3 * spec.control_hz, True)):
            control = SafeController(bus, spec, rate_hz=rate)
            retry(control.start)
            short = [e for e in control.monitor.events if e.what == "read budget short"]
            assert bool(short) == warned, (rate, [e.detail for e in short])
        assert "return delay" in short[0].detail
        bus.disconnect()


def test_brownout_is_detected_and_the_arm_reenabled():
    with rig("[[brownout]]\nat = 0.3\nduration = 0.05\n") as (chain, injector, control):
        events = [e for s in steps(control, 1.2) for e in s.verdict.events]
        assert any(e.kind == "torque_lost" and e.what == "raised" for e in events)
        assert control.bus.sync_read(Reg.TORQUE_ENABLE) == {i: 1 for i in control.bus.ids}
    assert any(e.kind == "torque_lost" and e.what == "reenabled" for e in control.monitor.events)


def test_clips_are_recorded_and_returned():
    monitor = Monitor(ROBOT, rate_hz=30.0)
    previous = HOME.copy()
    target = HOME + np.array([1.0, 0.0, 0.0, 5.0, 0.0, np.nan])
    sent = monitor.clip(target, previous)
    step = monitor.max_step
    np.testing.assert_allclose(sent - previous, [step[0], 0, 0, step[3], 0, 0])  # NaN holds
    kinds = [(e.kind, e.joint, e.threshold) for e in monitor.events]
    assert kinds == [("command_limit", "wrist_flex", ROBOT.joints[3].range[1] - 0.01),
                     ("command_jump", "shoulder_pan", round(step[0], 6)), ("command_jump", "wrist_flex", round(step[3], 6))]
    assert monitor.counts["command_limit"] == 1 and monitor.counts["command_jump"] == 2


def _reading(t: float, load: float | None) -> Reading:
    """A cycle of the so100 at HOME with the gripper (servo 6) at `load` [fraction of full
    effort]; None: the read was lost."""
    if load is None:
        return Reading(t, None, error="timeout")
    n = len(HOME)
    loads = np.zeros(n)
    loads[5] = load
    state = BusState(tuple(s.id for s in ROBOT.bus.servos), HOME.copy(), np.zeros(n), loads, np.full(n, 7.4),
                     np.full(n, 30.0), np.zeros(n, np.uint8), ((),) * n, t)
    return Reading(t, state, torque=np.ones(n), command=HOME.copy())


def test_lost_reads_neither_break_nor_count_toward_a_confirmation():
    """An overload must persist `confirm_cycles` good reads; a lost read in between shows
    nothing either way, while a good read without it starts the count again."""
    monitor = Monitor(ROBOT, rate_hz=40.0)
    full = monitor.limits.effort_full[5]
    over = ROBOT.safety.load_max * full * 1.5
    need = ROBOT.safety.confirm_cycles
    t = 0.0
    for cycle in range(need - 1):  # one short, a lost read after each
        for load in (over, None):
            t += 0.025
            monitor.check(_reading(t, load))
    assert monitor.counts["overload"] == 0
    monitor.check(_reading(t + 0.025, over))
    assert monitor.counts["overload"] == 1 and [e.servo for e in monitor.events if e.kind == "overload"] == [6]

    fresh = Monitor(ROBOT, rate_hz=40.0)
    loads = [over] * (need - 1) + [0.0] + [over] * (need - 1)
    for k, load in enumerate(loads):
        fresh.check(_reading(0.025 * k, load))
    assert fresh.counts["overload"] == 0


def test_a_fault_escalates_only_after_consecutive_cycles():
    """Escalation counts cycles in a row (`escalate_cycles`): on a bus that loses every
    other read, bus_timeout stays at retry (the arm follows, `stale` watches the age of the
    state) and goes to hold only once reads fail back to back."""
    monitor = Monitor(ROBOT, rate_hz=40.0)
    t = 0.0
    for _ in range(20):
        for load in (None, 0.0):
            t += 0.025
            monitor.check(_reading(t, load))
    assert monitor.counts["bus_timeout"] == 1 and ("bus_timeout", None) in monitor.faults
    assert not [e for e in monitor.events if e.what == "escalated"]
    verdicts = []
    for _ in range(ROBOT.safety.escalate_cycles):  # the fault is still active (never 10 good reads in a row)
        t += 0.025
        verdicts.append(monitor.check(_reading(t, None)))
    assert [v.reaction for v in verdicts][-2:] == [Reaction.RETRY, Reaction.HOLD]
    assert [(e.kind, e.reaction) for e in monitor.events if e.what == "escalated"] == [("bus_timeout", "hold")]


@given(arrays(np.float64, 6, elements=st.floats(-50, 50)), arrays(np.float64, 6, elements=st.floats(-3, 3)))
def test_no_command_ever_leaves_the_joint_limits(target, previous):
    monitor = Monitor(ROBOT, rate_hz=30.0)
    sent = monitor.clip(target, previous)
    lim = monitor.limits
    assert np.all(sent >= lim.low) and np.all(sent <= lim.high)
    inside = (previous >= lim.low + 0.01) & (previous <= lim.high - 0.01)
    assert np.all(np.abs(sent - previous)[inside] <= monitor.max_step[inside] + 1e-9)


def test_ctrl_c_inside_the_loop_brings_the_arm_to_rest(tmp_path):
    box = BlackBox(tmp_path / "stop.jsonl")

    def targets(t: float) -> np.ndarray:
        if t > 0.3:
            raise KeyboardInterrupt
        return HOME + np.array([0.4, 0.3, 0.0, -0.3, 0.3, 0.0]) * min(t / 0.3, 1.0)

    with rig(blackbox=box) as (chain, injector, control):
        with pytest.raises(KeyboardInterrupt):
            control.run(targets, duration=5.0)
        time.sleep(0.2)
        with chain.lock:
            q = np.array([s.position_rad() for s in chain.servos])
            torque = [s.torque_on for s in chain.servos]
    np.testing.assert_allclose(q[:5], ROBOT.home, atol=0.03)
    assert all(torque)  # so100 falls when limp: torque stays on at rest
    logged = [(e["kind"], e["what"], e.get("detail", "")) for e in read_blackbox(box.path)]
    assert ("controller", "shutdown", "KeyboardInterrupt") in logged and ("controller", "at rest", "safe pose") in logged


def test_safety_table_in_robot_toml(tmp_path):
    text = (ROBOT.root / "robot.toml").read_text().replace('mjcf = "so100.xml"', f'mjcf = "{ROBOT.mjcf}"')
    text = text.split("\n[safety]")[0].split("\n# Fault monitor")[0]  # the shipped table, replaced below
    good = text + '\n[safety]\ntemperature_warn = 55.0\nsafe_pose = { shoulder_lift = -1.0 }\n' \
        '[safety.reactions]\nbus_timeout = ["hold", "slow_stop"]\n'
    (tmp_path / "robot.toml").write_text(good)
    spec = robots.spec.parse(tmp_path / "robot.toml")
    assert spec.safety.temperature_warn == 55.0 and spec.safety.reactions_for("bus_timeout") == ("hold", "slow_stop")
    assert spec.safety.reactions_for("overheat") == ("slow_stop", "torque_off") and spec.hash == ROBOT.hash
    assert Monitor(spec).limits.safe_pose[1] == -1.0
    (tmp_path / "robot.toml").write_text(text + '\n[safety.reactions]\noverheat = ["torque_off"]\n')
    with pytest.raises(SpecError, match="falls when limp"):
        robots.spec.parse(tmp_path / "robot.toml")


def test_blackbox_cli_prints_the_log(tmp_path, capsys):
    monitor = Monitor(ROBOT, blackbox=BlackBox(tmp_path / "b.jsonl"))
    monitor.clip(HOME + 3.0, HOME)
    monitor.blackbox.close()
    args = argparse.Namespace(log=str(tmp_path / "b.jsonl"), kind="command_limit")
    assert data_cli.ACTIONS["blackbox"][1](args) == 0
    out = capsys.readouterr().out
    assert "command_limit" in out and "servo 1 (shoulder_pan)" in out and "command_jump clipped: 6" in out
