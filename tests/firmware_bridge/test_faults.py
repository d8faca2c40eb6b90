"""Fault profiles and the injector: parsing, seeded reproducibility, each timed fault's
effect on the emulated servos (over a real pty where the driver must see it)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import robots
from firmware_bridge.bus import ServoBus
from firmware_bridge.emulator import EmulatedChain, FaultInjector, available_profiles, load_profile, parse_profile
from firmware_bridge.errors import FaultProfileError, UnknownFaultProfile
from firmware_bridge.link import Timing
from firmware_bridge.tables import Reg

SPEC = robots.load("so100")


def test_shipped_profiles_parse_and_flaky_matches_the_issue():
    assert {"none", "flaky", "harsh"} <= set(available_profiles())
    flaky = load_profile("flaky")
    assert flaky.packets.drop == 0.05 and flaky.packets.latency_s == 0.020
    assert [type(f).__name__ for f in flaky.timed] == ["Overheat"]
    harsh = load_profile("harsh")
    kinds = {type(f).__name__ for f in harsh.timed}
    assert kinds == {"Overheat", "Stall", "Overload", "Glitch", "Disconnect", "Brownout"}
    assert harsh.packets.corrupt > 0 and harsh.random_glitches.rate > 0
    assert load_profile("none").schedule() == ()


def test_bad_profiles_name_the_field():
    with pytest.raises(FaultProfileError, match=r"stall\[0\].end: missing"):
        parse_profile("[[stall]]\nservo = 1\nstart = 0.0\n")
    with pytest.raises(FaultProfileError, match="packets.drop"):
        parse_profile("[packets]\ndrop = 2.0\n")
    with pytest.raises(FaultProfileError, match="unknown key"):
        parse_profile("[[meteor]]\nat = 1.0\n")
    with pytest.raises(UnknownFaultProfile, match="Did you mean 'flaky'"):
        load_profile("flakey")


def _replies(n: int) -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(0)
    return [(int(rng.integers(1, 7)), bytes(rng.integers(0, 256, 14, dtype=np.uint8))) for _ in range(n)]


def _play(seed: int, replies) -> tuple[list, list]:
    injector = FaultInjector(load_profile("harsh"), seed=seed, clock=lambda: 100.0)
    injector._t0 = 0.0  # as after the chain's first physics step
    out = [injector.outgoing(i, r) for i, r in replies]
    return out, [(f.kind, f.servo, f.detail) for f in injector.injected]


def test_same_seed_same_faults_other_seed_other_faults():
    replies = _replies(2000)
    a, b, c = _play(3, replies), _play(3, replies), _play(4, replies)
    assert a == b and a != c
    kinds = {k for k, _, _ in a[1]}
    assert kinds == {"drop", "corrupt", "latency"}
    assert 0.03 < sum(k == "drop" for k, _, _ in a[1]) / len(replies) < 0.07
    profile = load_profile("harsh")
    assert profile.schedule(3) == profile.schedule(3) != profile.schedule(4)
    assert FaultInjector(profile, seed=3).schedule == profile.schedule(3)


def _run(profile_text: str, seconds: float, positions=None):
    injector = FaultInjector(parse_profile(profile_text))
    chain = EmulatedChain.from_bus_spec(SPEC.bus, faults=injector, positions_rad=positions)
    return chain, injector


def test_overheat_ramps_sets_the_servo_bit_and_cuts_its_torque():
    chain, injector = _run("[[overheat]]\nservo = 2\nstart = 0.0\nrate = 400.0\npeak = 80.0\n", 0.3)
    with chain:
        bus = ServoBus(SPEC.bus, chain.port, Timing(margin=0.02))
        bus.connect()
        bus.torque(True)
        time.sleep(0.3)
        state = bus.read_state()
        assert state.temperatures[1] >= 75 and "overheating" in state.errors[1]
        assert bus.read(Reg.TORQUE_ENABLE, 2) == 0 and bus.read(Reg.TORQUE_ENABLE, 1) == 1
        bus.disconnect()
    assert [(f.kind, f.servo) for f in injector.injected] == [("overheat", 2)]


def test_stall_brownout_and_disconnect_act_on_the_chain():
    text = ("[[stall]]\nservo = 1\nstart = 0.0\nend = 0.3\n[[disconnect]]\nstart = 0.4\nend = 0.5\n"
            "[[brownout]]\nat = 0.6\nduration = 0.05\n")
    chain, injector = _run(text, 1.0)
    with chain:
        with chain.lock:
            start = chain.servo(1).get(Reg.PRESENT_POSITION)
            for s in chain.servos:
                s.set(Reg.TORQUE_ENABLE, 1)
                s.set(Reg.GOAL_POSITION, start + 800)
        time.sleep(0.2)
        with chain.lock:
            stalled, free = chain.servo(1), chain.servo(2)
            assert abs(stalled.get(Reg.PRESENT_POSITION) - start) < 40  # pinned at its first physics step and abs(stalled.load) == 1.0
            assert free.get(Reg.PRESENT_POSITION) > start + 400
        time.sleep(0.25)
        with chain.lock:
            assert all(s.silent for s in chain.servos)  # disconnected
        time.sleep(0.4)
        with chain.lock:
            assert not any(s.silent for s in chain.servos)
            assert all(s.get(Reg.TORQUE_ENABLE) == 0 for s in chain.servos)  # brownout reset
            assert all(s.get(Reg.GOAL_POSITION) == s.get(Reg.PRESENT_POSITION) for s in chain.servos)
    assert [f.kind for f in injector.injected] == ["stall", "disconnect", "brownout"]
