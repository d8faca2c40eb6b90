"""ArmLayout: a robot's state and action vectors <-> its bus's servos, on a bus whose servo
order differs from robot.toml's joint order (as a [[bus.servos]] table may list them)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import robots
from firmware_bridge.arm import ArmLayout
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import Calibration
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.errors import ArmMismatch
from firmware_bridge.link import Timing

ROBOT = robots.load("so100")
CALIBRATION = Calibration.from_spec(ROBOT)
SHUFFLED = dataclasses.replace(ROBOT.bus, servos=tuple(ROBOT.bus.servos[k] for k in (5, 2, 0, 4, 1, 3)))
ACTION = np.array([0.3, -0.35, 0.25, 1.7, -0.6, 0.5], np.float32)  # robot.toml order, gripper half open
TICK = 2 * np.pi / 4096  # sts3215 [rad]: calibrated ranges end on whole ticks


def test_a_joint_without_a_servo_is_refused():
    bus = dataclasses.replace(ROBOT.bus, servos=tuple(s for s in SHUFFLED.servos if s.joint != "elbow_flex"))
    with pytest.raises(ArmMismatch, match=r"so100's bus has no servo for elbow_flex; its servos drive gripper, "
                                          r"shoulder_pan, wrist_roll, shoulder_lift, wrist_flex\. Fix:") as refused:
        ArmLayout.of(bus, ROBOT)
    assert refused.value.missing == ("elbow_flex",)


def test_targets_follow_the_bus_order_and_invert_observation():
    bus = ServoBus(SHUFFLED, "unused", calibration=CALIBRATION)  # never connected: the layout reads no servo
    layout = ArmLayout.of(bus, ROBOT)
    assert (layout.joint_index, layout.gripper_index) == ((2, 4, 1, 5, 3), 0)
    targets = layout.targets(bus, ACTION)
    np.testing.assert_allclose(targets[[2, 4, 1, 5, 3]], ACTION[:5], atol=1e-6)
    assert targets[0] == pytest.approx(0.75, abs=TICK)  # half of the gripper's 1.5 rad travel
    np.testing.assert_allclose(layout.observation(bus, targets), ACTION, atol=1e-6)
    assert np.isnan(layout.targets(bus, np.array([0, 0, np.nan, 0, 0, 0.5]))).all()  # the monitor holds


def test_gripper_commands_stay_inside_the_limit_margin():
    bus = ServoBus(SHUFFLED, "unused", calibration=CALIBRATION)
    layout = ArmLayout.of(bus, ROBOT)
    margin = ROBOT.safety.limit_margin
    closed, wide_open = (layout.targets(bus, np.array([*ACTION[:5], g]))[0] for g in (-0.5, 1.5))
    assert (closed, wide_open) == pytest.approx((margin, 1.5 - margin), abs=TICK)


def test_state_through_the_wire_of_an_emulated_chain():
    layout = ArmLayout.of(SHUFFLED, ROBOT)  # a BusSpec will do: only the servo order is read
    offline = ServoBus(SHUFFLED, "unused", calibration=CALIBRATION)
    with EmulatedChain.from_bus_spec(SHUFFLED, positions_rad=layout.targets(offline, ACTION)) as chain, \
            ServoBus(SHUFFLED, chain.port, Timing(margin=0.02), calibration=CALIBRATION) as bus:
        state = layout.observation(bus, bus.read_state().positions)
    np.testing.assert_allclose(state[:5], ACTION[:5], atol=TICK)
    assert state[5] == pytest.approx(0.5, abs=TICK / 1.5)
