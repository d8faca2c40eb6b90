"""Calibration: ticks <-> radians math, files, LeRobot import, and the operator procedure
driven with scripted positions against an emulated chain."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest

import robots
from firmware_bridge import encoding
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import (Calibration, CalibrationError, CalibrationRecorder, ServoCalibration,
                                         calibration_path, from_lerobot, load_calibration)
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.link import Timing
from firmware_bridge.tables import Reg
from robots.spec import BusSpec, ServoSpec

TIMING = Timing(margin=0.02)
TICK = 2 * math.pi / 4096
# how the horns of "this" physical so100 sit: joint angle [rad] at servo position 0
MOUNTING = (0.31, -0.52, 1.04, 0.2, -0.73, 0.4)


@pytest.fixture
def cal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBODIED_CALIBRATION_DIR", str(tmp_path / "calibration"))
    return tmp_path / "calibration"


def mounted(bus: BusSpec, offsets=MOUNTING, directions=None) -> BusSpec:
    directions = directions or [s.direction for s in bus.servos]
    return dataclasses.replace(bus, servos=tuple(dataclasses.replace(s, offset=o, direction=d)
                                                 for s, o, d in zip(bus.servos, offsets, directions)))


# --- math --------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("offset", [0.0, 0.7, -2.1])
def test_from_bus_matches_robot_toml_direction_and_offset(direction, offset):
    spec = BusSpec("feetech_sts", 1_000_000, (ServoSpec("j", 1, "sts3215", direction, offset),))
    c = Calibration.from_bus(spec).servo("j")
    for ticks in (-1500, -3, 0, 17, 1800):  # reads unwrap to the turn around the joint's zero: within +-pi
        expected = encoding.ticks_to_radians(ticks, 4096, direction, offset)
        expected = (expected + math.pi) % (2 * math.pi) - math.pi
        assert c.to_radians(ticks) == pytest.approx(expected)
    for q in (-1.2, 0.0, 0.4, 1.9):
        assert c.to_ticks(q) == encoding.radians_to_ticks(q, 4096, direction, offset)
        assert c.to_radians(c.to_ticks(q)) == pytest.approx(q, abs=TICK / 2)


def test_homing_direction_and_range_round_trip():
    c = ServoCalibration("elbow", 3, homing_offset=1000.0, direction=-1, range_min=400, range_max=1900)
    assert c.to_radians(1000) == 0.0
    assert c.to_radians(1100) == pytest.approx(-100 * TICK)  # direction -1: more ticks, smaller angle
    lo, hi = c.range_rad()
    assert (lo, hi) == pytest.approx((-900 * TICK, 600 * TICK))
    for q in np.linspace(lo, hi, 7):
        assert c.to_radians(c.to_ticks(q)) == pytest.approx(q, abs=TICK / 2)
    # the gripper opening: 0 at the lowest angle, 1 at the highest, clipped outside
    assert c.opening(lo) == 0.0 and c.opening(hi) == 1.0 and c.opening(hi + 1) == 1.0
    assert c.opening(c.opening_to_radians(0.25)) == pytest.approx(0.25)


def test_a_range_across_the_encoder_wrap_reads_continuously():
    c = ServoCalibration("wrist_roll", 5, homing_offset=4000.0, direction=1, range_min=3500, range_max=4500)
    assert c.to_radians(100) == pytest.approx(196 * TICK)  # 100 is 4196 one turn on
    assert c.to_radians(3900) == pytest.approx(-100 * TICK)
    assert c.to_ticks(196 * TICK) == 4196


def test_invalid_calibrations_are_refused():
    with pytest.raises(CalibrationError, match="direction"):
        ServoCalibration("a", 1, 0.0, 2, 0, 100)
    with pytest.raises(CalibrationError, match="range"):
        ServoCalibration("a", 1, 0.0, 1, 100, 100)
    with pytest.raises(CalibrationError, match="range"):
        ServoCalibration("a", 1, 0.0, 1, 0, 5000)
    so100 = robots.load("so100")
    koch_cal = Calibration.from_spec(robots.load("koch"))
    broken = dataclasses.replace(koch_cal, servos=koch_cal.servos[1:])
    with pytest.raises(CalibrationError, match="no servo for joint 'shoulder_pan'"):
        broken.for_bus(so100.bus)


def test_save_and_load_under_the_calibration_dir(cal_dir):
    cal = dataclasses.replace(Calibration.from_spec(robots.load("koch")), instance="left")
    path = cal.save()
    assert path == cal_dir / "koch" / "left.json" == calibration_path("koch", "left")
    assert load_calibration("koch", "left") == cal
    assert json.loads(path.read_text())["servos"][0]["joint"] == "shoulder_pan"
    with pytest.raises(CalibrationError, match="embodied robots calibrate"):
        load_calibration("koch", "right")
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        load_calibration("koch", "left")
    with pytest.raises(CalibrationError, match="plain file name"):
        calibration_path("koch", "../x")


# --- LeRobot -----------------------------------------------------------------------------
def lerobot_file(robot: robots.RobotSpec, homing: int, drive: dict[str, int]) -> dict:
    return {s.joint: {"id": s.id, "drive_mode": drive.get(s.joint, 0), "homing_offset": homing + 10 * s.id,
                      "range_min": 900 + 20 * s.id, "range_max": 3100 - 30 * s.id} for s in robot.bus.servos}


def lerobot_value(entry: dict, homed: int) -> float:
    """What LeRobot 0.4 reports: degrees (joints; drive mode in the sign) or 0..100 (gripper)."""
    lo, hi = entry["range_min"], entry["range_max"]
    return (homed - (lo + hi) / 2) * 360 / 4095, (homed - lo) / (hi - lo) * 100


@pytest.mark.parametrize("name,sign", [("so100", -1), ("koch", 1)])  # Feetech: actual - h; Dynamixel: actual + h
@pytest.mark.parametrize("in_servo", [False, True])
def test_lerobot_import_reproduces_lerobot_readings(name, sign, in_servo):
    robot = robots.load(name)
    data = lerobot_file(robot, homing=-700 if sign < 0 else 650, drive={"elbow_flex": 1})
    registers = {s.id: data[s.joint]["homing_offset"] for s in robot.bus.servos} if in_servo else None
    cal = from_lerobot(data, robot, "imported", servo_homing=registers)
    middle = {j.name: sum(j.range) / 2 for j in robot.joints}
    for s in robot.bus.servos:
        entry, c = data[s.joint], cal.servo(s.joint)
        for homed in (entry["range_min"], 2047, entry["range_max"]):
            reported = homed if in_servo else homed - sign * entry["homing_offset"]
            degrees, percent = lerobot_value(entry, homed)
            q = c.to_radians(reported)
            if s.joint == robot.gripper.joint:
                assert c.opening(q) == pytest.approx(percent / 100)
            else:
                flip = -1 if entry["drive_mode"] else 1
                assert (q - middle[s.joint]) * flip == pytest.approx(math.radians(degrees), rel=1e-3, abs=1e-6)


def test_lerobot_import_errors_name_the_motor():
    robot = robots.load("so100")
    data = lerobot_file(robot, -700, {})
    with pytest.raises(CalibrationError, match="no motor 'wrist_roll'"):
        from_lerobot({k: v for k, v in data.items() if k != "wrist_roll"}, robot)
    with pytest.raises(CalibrationError, match="is id 9"):
        from_lerobot({**data, "gripper": {**data["gripper"], "id": 9}}, robot)
    renamed = {("pan" if k == "shoulder_pan" else k): v for k, v in data.items()}
    assert from_lerobot(renamed, robot, names={"shoulder_pan": "pan"}).servo("shoulder_pan").id == 1


def test_import_lerobot_command(cal_dir, tmp_path, capsys):
    from embodied.cli.main import main

    robot = robots.load("so100")
    path = tmp_path / "so100_follower.json"
    path.write_text(json.dumps(lerobot_file(robot, -700, {}), indent=4))
    assert main(["robots", "calibrate", "--robot", "so100", "--import-lerobot", str(path), "--instance", "arm7"]) == 0
    assert str(cal_dir / "so100" / "arm7.json") in capsys.readouterr().out
    assert load_calibration("so100", "arm7").servo("gripper").range_min == 900 + 120 - 700 + 60  # Feetech: reported = homed + h


# --- the procedure on an emulated arm ----------------------------------------------------
def set_pose(chain: EmulatedChain, q: np.ndarray) -> None:
    with chain.lock:
        chain.plant.positions = np.array(q, dtype=float)
    time.sleep(0.004)  # the chain stores the plant state at its next step (>= 1 ms)


def test_scripted_calibration_recovers_a_mis_mounted_arm(cal_dir, capsys):
    from embodied.cli.robots_cmd import record_calibration

    robot = robots.load("so100")
    lo = np.array([j.range[0] for j in robot.joints] + [0.0])
    hi = np.array([j.range[1] for j in robot.joints] + [1.5])
    middle = (lo + hi) / 2
    sweep = [middle + f * (hi - lo) / 2 for f in np.linspace(-1, 1, 9)] + [middle]
    with EmulatedChain.from_bus_spec(mounted(robot.bus), positions_rad=np.zeros(6)) as chain:
        with ServoBus(robot.bus, chain.port, TIMING) as bus:
            nominal = bus.read_state().positions  # robot.toml's offsets misread this arm
            assert np.abs(nominal - 0.0).max() > 0.5
            steps = iter(sweep)

            def done() -> bool:  # the operator moves on; Enter once the sweep is over
                q = next(steps, None)
                if q is None:
                    return True
                set_pose(chain, q)
                return False

            cal = record_calibration(bus, robot, "bench", wait=lambda prompt: set_pose(chain, middle), done=done,
                                     period=0.0)
            assert bus.sync_read(Reg.TORQUE_ENABLE) == {i: 0 for i in bus.ids}
        assert "Move every joint" in capsys.readouterr().out
        cal.save()
        with ServoBus(robot.bus, chain.port, TIMING, calibration=load_calibration("so100", "bench")) as bus:
            rng = np.random.default_rng(0)
            for _ in range(3):
                q = rng.uniform(lo, hi)
                set_pose(chain, q)
                state = bus.read_state()
                np.testing.assert_allclose(state.positions[:5], q[:5], atol=1.5 * TICK)
                gripper = bus.calibration.servo("gripper")
                assert gripper.opening(state.positions[5]) == pytest.approx(q[5] / 1.5, abs=1e-3)
            for j, (a, b) in zip(robot.joints, zip(lo, hi)):
                np.testing.assert_allclose(cal.servo(j.name).range_rad(), (a, b), atol=1.5 * TICK)
            # targets land where the calibration says: the emulated servo's goal in true joint angles
            bus.torque(True)
            goal = middle + 0.1
            bus.write_targets(goal)
            time.sleep(0.01)
            with chain.lock:
                np.testing.assert_allclose([s.goal_rad() for s in chain.servos][:5], goal[:5], atol=1.5 * TICK)


def test_a_joint_that_was_not_moved_is_named():
    robot = robots.load("koch")
    rec = CalibrationRecorder(robot)
    with pytest.raises(CalibrationError, match="home"):
        rec.sample({s.id: 0 for s in robot.bus.servos})
    rec.home({s.id: 2000 for s in robot.bus.servos})
    rec.sample({s.id: 2000 if s.joint == "wrist_roll" else 2600 for s in robot.bus.servos})
    rec.sample({s.id: 2000 if s.joint == "wrist_roll" else 1400 for s in robot.bus.servos})
    assert rec.unmoved() == ["wrist_roll"]
    with pytest.raises(CalibrationError, match=r"\['wrist_roll'\]"):
        rec.result()
    rec.sample({s.id: 4096 + 2030 if s.joint == "wrist_roll" else 1400 for s in robot.bus.servos})  # one turn on
    assert rec.result().servo("wrist_roll").range_max == 2030
