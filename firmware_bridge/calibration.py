"""Calibration of one physical robot instance: where each servo's ticks put its joint.

Two arms of the same robot differ by how each servo horn was mounted: a calibration
records, per servo, the raw position [ticks] at which the joint angle is 0 rad (homing
offset), the sign between ticks and angle (drive direction), and the range of raw
positions the joint can reach (recorded by sweeping it by hand). `ServoBus` applies it:

    cal = load_calibration("so100", "left")          # ~/.cache/embodied/calibration/so100/left.json
    bus = ServoBus(robot.bus, port, calibration=cal)  # positions in joint radians

    q [rad] = direction * (unwrap(ticks) - homing_offset) * 2 pi / resolution

`unwrap` picks the turn of a raw reading closest to the middle of the recorded range, so
a range that crosses the encoder's wrap point (4095 -> 0) reads continuously. Without a
calibration file the robot.toml direction and offset are the calibration (`from_bus`).

The gripper's opening in [0, 1] is its angle within the recorded range: 0 at the lowest
joint angle (closed), 1 at the highest (open). Raw ticks here are what PRESENT_POSITION
reports with the servo's own HOMING_OFFSET register left as it is (0 from the factory);
the offset is applied in software, never written to EEPROM.

`CalibrationRecorder` is the operator procedure as pure state (home, then sweep); the
prompts live in the CLI (`embodied robots calibrate`). `from_lerobot` imports LeRobot's
calibration JSON (`{motor: {id, drive_mode, homing_offset, range_min, range_max}}`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.errors import BridgeError, EncodingError
from firmware_bridge.tables import table_for
from robots.spec import BusSpec, RobotSpec

ENV_DIR = "EMBODIED_CALIBRATION_DIR"
DEFAULT_DIR = Path("~/.cache/embodied/calibration")
FORMAT, VERSION = "embodied-calibration", 1
DEFAULT_GRIPPER_TRAVEL = 1.5  # servo angle [rad] from closed to open (as embodied.sim_plant)
MIN_SWEEP = 20  # smallest recorded range [ticks] that counts as "the joint was moved"
# LeRobot writes its homing offset into the servo: Feetech reports actual - offset,
# Dynamixel actual + offset (lerobot.motors.*._get_half_turn_homings).
_LEROBOT_HOMING_SIGN = {"feetech_sts": -1, "dynamixel_2": 1}


class CalibrationError(BridgeError):
    """A calibration that is missing, malformed, or does not fit the robot's bus."""


@dataclass(frozen=True)
class ServoCalibration:
    """Ticks <-> joint angle of one servo.

    Attributes:
        joint: joint name (robot.toml), or the gripper joint.
        id: servo id on the bus.
        homing_offset: raw position [ticks] at which the joint angle is 0 rad.
        direction: +1 or -1, the sign between ticks and the joint angle.
        range_min, range_max: raw positions [ticks] the joint reaches (unwrapped: may lie
            below 0 or above resolution - 1 when the range crosses the wrap point).
        resolution: ticks per revolution [ticks/rev].
    """

    joint: str
    id: int
    homing_offset: float
    direction: int
    range_min: int
    range_max: int
    resolution: int = 4096

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise CalibrationError(f"servo {self.id} ({self.joint}): direction must be +1 or -1, found "
                                   f"{self.direction}")
        if not self.range_min < self.range_max <= self.range_min + self.resolution:
            raise CalibrationError(
                f"servo {self.id} ({self.joint}): range [{self.range_min}, {self.range_max}] ticks must be "
                f"non-empty and at most one turn ({self.resolution} ticks). Fix: calibrate again, moving the joint "
                "through its whole range")
        if not math.isfinite(self.homing_offset):
            raise CalibrationError(f"servo {self.id} ({self.joint}): homing offset {self.homing_offset} is not finite")

    @property
    def rad_per_tick(self) -> float:
        return 2.0 * math.pi / self.resolution

    def unwrap(self, ticks: int) -> int:
        """The raw position [ticks] one whole turn away from `ticks` (or `ticks` itself)
        that lies nearest the middle of the range."""
        center = (self.range_min + self.range_max) / 2
        return ticks + self.resolution * round((center - ticks) / self.resolution)

    def to_radians(self, ticks: int, unwrap: bool = True) -> float:
        """Joint angle [rad] of a raw servo position [ticks]."""
        t = self.unwrap(ticks) if unwrap else ticks
        return self.direction * (t - self.homing_offset) * self.rad_per_tick

    def to_ticks(self, angle: float) -> int:
        """Raw servo position [ticks] nearest to a joint angle [rad]."""
        if not math.isfinite(angle):
            raise EncodingError(angle, "the angle is not finite", "check the command source for NaN / inf")
        return round(self.homing_offset + self.direction * angle / self.rad_per_tick)

    def range_rad(self) -> tuple[float, float]:
        """Lowest and highest joint angle [rad] of the recorded range."""
        a, b = self.to_radians(self.range_min, False), self.to_radians(self.range_max, False)
        return min(a, b), max(a, b)

    def opening(self, angle: float) -> float:
        """Gripper opening in [0, 1] (0 closed, 1 open) of a joint angle [rad], clipped."""
        lo, hi = self.range_rad()
        return min(max((angle - lo) / (hi - lo), 0.0), 1.0)

    def opening_to_radians(self, opening: float) -> float:
        """Joint angle [rad] of a gripper opening in [0, 1] (clipped to [0, 1])."""
        lo, hi = self.range_rad()
        return lo + min(max(opening, 0.0), 1.0) * (hi - lo)


@dataclass(frozen=True)
class Calibration:
    """Calibration of every servo of one robot instance.

    Attributes:
        robot: robot name (robot.toml).
        instance: name of the physical arm ("default", "left", a serial number ...).
        servos: one `ServoCalibration` per servo, in any order.
    """

    robot: str
    instance: str
    servos: tuple[ServoCalibration, ...]

    def __post_init__(self) -> None:
        ids = [s.id for s in self.servos]
        if len(set(ids)) != len(ids):
            raise CalibrationError(f"calibration {self.robot}/{self.instance}: duplicate servo ids {ids}")

    def servo(self, joint: str) -> ServoCalibration:
        for s in self.servos:
            if s.joint == joint:
                return s
        raise CalibrationError(f"calibration {self.robot}/{self.instance} has no servo for joint {joint!r}; "
                               f"joints: {[s.joint for s in self.servos]}")

    def for_bus(self, spec: BusSpec) -> tuple[ServoCalibration, ...]:
        """The servos' calibrations in the bus spec's order; `CalibrationError` when a servo
        is missing or its id differs from robot.toml."""
        out = []
        for s in spec.servos:
            c = self.servo(s.joint)
            if c.id != s.id:
                raise CalibrationError(f"calibration {self.robot}/{self.instance}: joint {s.joint!r} is servo {c.id}, "
                                       f"robot.toml says {s.id}. Fix: calibrate this arm again")
            out.append(c)
        return tuple(out)

    # --- defaults --------------------------------------------------------------------
    @classmethod
    def from_bus(cls, spec: BusSpec, robot: str = "", instance: str = "robot.toml") -> Calibration:
        """The calibration robot.toml implies: each servo's direction and offset, a range
        of one whole turn centred on the joint's zero."""
        servos = []
        for s in spec.servos:
            res = table_for(s.model).resolution
            zero = -s.direction * s.offset * res / (2.0 * math.pi)
            servos.append(ServoCalibration(s.joint, s.id, zero, s.direction, round(zero) - res // 2,
                                           round(zero) + res // 2, res))
        return cls(robot, instance, tuple(servos))

    @classmethod
    def from_spec(cls, robot: RobotSpec, gripper_travel: float = DEFAULT_GRIPPER_TRAVEL) -> Calibration:
        """`from_bus` with ranges from the robot.toml joint limits, and the gripper closed
        at 0 rad and open at `gripper_travel` [rad]."""
        bus = _bus(robot)
        limits = {j.name: j.range for j in robot.joints}
        limits[robot.gripper.joint] = (0.0, gripper_travel)
        servos = []
        for c in cls.from_bus(bus, robot.name).servos:
            a, b = (c.to_ticks(x) for x in limits[c.joint])
            servos.append(ServoCalibration(c.joint, c.id, c.homing_offset, c.direction, min(a, b), max(a, b),
                                           c.resolution))
        return cls(robot.name, "robot.toml", tuple(servos))

    # --- files -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "robot": self.robot, "instance": self.instance,
                "servos": [asdict(s) for s in self.servos]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Calibration:
        if data.get("format") != FORMAT:
            raise CalibrationError(f"{source}: format {data.get('format')!r} is not {FORMAT!r}. Fix: for a LeRobot "
                                   "file use `embodied robots calibrate --import-lerobot FILE`")
        if data.get("version", 0) > VERSION:
            raise CalibrationError(f"{source}: version {data['version']} is newer than this code ({VERSION})")
        try:
            servos = tuple(ServoCalibration(**s) for s in data["servos"])
            return cls(str(data["robot"]), str(data["instance"]), servos)
        except (KeyError, TypeError) as e:
            raise CalibrationError(f"{source}: malformed calibration ({e!r}). Fix: calibrate again") from e

    def save(self, path: str | Path | None = None) -> Path:
        """Write JSON to `path` (default: `calibration_path(robot, instance)`) atomically."""
        path = Path(path) if path is not None else calibration_path(self.robot, self.instance)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CalibrationError(f"no calibration file {path}. Fix: run `embodied robots calibrate`") from None
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{path} is not valid JSON ({e}). Fix: calibrate again") from e
        return cls.from_dict(data, str(path))


def calibration_dir() -> Path:
    """Folder of calibration files: $EMBODIED_CALIBRATION_DIR, else ~/.cache/embodied/calibration."""
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR).expanduser()


def calibration_path(robot: str, instance: str) -> Path:
    """`<calibration_dir>/<robot>/<instance>.json`."""
    if not instance or "/" in instance or instance.startswith("."):
        raise CalibrationError(f"instance name {instance!r} must be a plain file name, e.g. 'left' or 'default'")
    return calibration_dir() / robot / f"{instance}.json"


def load_calibration(robot: str, instance: str = "default") -> Calibration:
    """The saved calibration of `robot`'s arm `instance`; `CalibrationError` if absent."""
    cal = Calibration.load(calibration_path(robot, instance))
    if cal.robot != robot:
        raise CalibrationError(f"{calibration_path(robot, instance)} calibrates {cal.robot!r}, not {robot!r}")
    return cal


def _bus(robot: RobotSpec) -> BusSpec:
    if robot.bus is None:
        raise CalibrationError(f"robot {robot.name!r} has no [bus] in its robot.toml: nothing to calibrate")
    return robot.bus


def _middle(robot: RobotSpec) -> dict[str, float]:
    """Calibration pose [rad]: the middle of each joint's range in robot.toml."""
    return {j.name: (j.range[0] + j.range[1]) / 2 for j in robot.joints}


# --- the operator procedure ----------------------------------------------------------
class CalibrationRecorder:
    """Records a calibration from raw positions read with torque off.

    1. `home(ticks)` with the arm in the calibration pose: every joint in the middle of
       its robot.toml range (`pose_rad`); the gripper anywhere.
    2. `sample(ticks)` repeatedly while the operator moves every joint through its range.
    3. `result(instance)`: the `Calibration` (`CalibrationError` names joints that did not move).

    Drive directions come from robot.toml: they cannot be seen from positions alone.

    Args:
        robot: the robot (its bus servos, joint ranges and gripper joint).
    """

    def __init__(self, robot: RobotSpec):
        self.robot, self.bus = robot, _bus(robot)
        self.pose_rad = _middle(robot)
        self.resolution = {s.id: table_for(s.model).resolution for s in self.bus.servos}
        self.home_ticks: dict[int, int] | None = None
        self.low: dict[int, int] = {}
        self.high: dict[int, int] = {}

    def home(self, ticks: Mapping[int, int]) -> None:
        """Raw positions {id: ticks} in the calibration pose; starts the range recording."""
        self.home_ticks = {s.id: int(ticks[s.id]) for s in self.bus.servos}
        self.low, self.high = dict(self.home_ticks), dict(self.home_ticks)

    def sample(self, ticks: Mapping[int, int]) -> None:
        """Widen each servo's range by one reading {id: ticks} (unwrapped around home)."""
        if self.home_ticks is None:
            raise CalibrationError("record the calibration pose (home) before sweeping the joints")
        for i, home in self.home_ticks.items():
            res = self.resolution[i]
            t = int(ticks[i])
            t += res * round((home - t) / res)
            self.low[i], self.high[i] = min(self.low[i], t), max(self.high[i], t)

    def unmoved(self) -> list[str]:
        """Joints whose recorded range is still below `MIN_SWEEP` ticks."""
        return [s.joint for s in self.bus.servos if self.high.get(s.id, 0) - self.low.get(s.id, 0) < MIN_SWEEP]

    def result(self, instance: str = "default") -> Calibration:
        if self.home_ticks is None:
            raise CalibrationError("no calibration pose recorded: call home() first")
        still = self.unmoved()
        if still:
            raise CalibrationError(f"joints {still} were not moved through their range (less than {MIN_SWEEP} ticks). "
                                   "Fix: calibrate again and move every joint from one end to the other")
        servos = []
        for s in self.bus.servos:
            res, lo, hi = self.resolution[s.id], self.low[s.id], self.high[s.id]
            if s.joint in self.pose_rad:
                zero = self.home_ticks[s.id] - s.direction * self.pose_rad[s.joint] * res / (2.0 * math.pi)
            else:  # the gripper: closed (lowest angle) at 0 rad
                zero = float(lo if s.direction > 0 else hi)
            servos.append(ServoCalibration(s.joint, s.id, zero, s.direction, lo, hi, res))
        return Calibration(self.robot.name, instance, tuple(servos))


# --- LeRobot -------------------------------------------------------------------------
def from_lerobot(data: Mapping[str, Mapping[str, int]], robot: RobotSpec, instance: str = "default",
                 names: Mapping[str, str] | None = None,
                 servo_homing: Mapping[int, int] | None = None) -> Calibration:
    """A calibration from a LeRobot (0.4) calibration file's content.

    LeRobot writes `homing_offset` into each servo so that the homing pose reads half a
    turn, records `range_min` / `range_max` in those homed ticks, puts 0 degrees at the
    middle of the range and flips the sign where `drive_mode` is 1. Here that middle is
    mapped to the middle of the robot.toml joint range (the calibration pose of
    `CalibrationRecorder`), and the gripper's range to its opening in [0, 1].

    Args:
        data: `{motor_name: {"id", "drive_mode", "homing_offset", "range_min", "range_max"}}`.
        robot: the robot; its bus protocol decides the sign of LeRobot's homing offset.
        instance: name of the arm.
        names: our joint name -> LeRobot motor name, where they differ (so100 and koch
            share LeRobot's names).
        servo_homing: {servo id: value of its HOMING_OFFSET register now} [ticks]; 0 for
            every servo when not given (servos reset, not homed by LeRobot).
    """
    bus = _bus(robot)
    sign = _LEROBOT_HOMING_SIGN[bus.protocol]
    middle = _middle(robot)
    servos = []
    for s in bus.servos:
        motor = (names or {}).get(s.joint, s.joint)
        entry = data.get(motor)
        if entry is None:
            raise CalibrationError(f"the LeRobot calibration has no motor {motor!r} (for joint {s.joint!r}); "
                                   f"motors: {sorted(data)}. Fix: pass a name mapping")
        try:
            mid_id, drive, h = int(entry["id"]), int(entry["drive_mode"]), int(entry["homing_offset"])
            rmin, rmax = int(entry["range_min"]), int(entry["range_max"])
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"LeRobot motor {motor!r}: malformed entry {dict(entry)!r} ({e!r})") from e
        if mid_id != s.id:
            raise CalibrationError(f"LeRobot motor {motor!r} is id {mid_id}, robot.toml says {s.id} for {s.joint!r}")
        res = table_for(s.model).resolution
        # reported = actual - r (Feetech) / + r (Dynamixel); LeRobot's homed ticks likewise with h
        shift = -sign * (h - int((servo_homing or {}).get(s.id, 0)))
        lo, hi = rmin + shift, rmax + shift
        direction = -s.direction if drive else s.direction
        if s.joint in middle:
            zero = (lo + hi) / 2 - direction * middle[s.joint] * res / (2.0 * math.pi)
        else:
            zero = float(lo if direction > 0 else hi)
        servos.append(ServoCalibration(s.joint, s.id, zero, direction, lo, hi, res))
    return Calibration(robot.name, instance, tuple(servos))


def load_lerobot(path: str | Path, robot: RobotSpec, instance: str = "default",
                 names: Mapping[str, str] | None = None,
                 servo_homing: Mapping[int, int] | None = None) -> Calibration:
    """`from_lerobot` of a LeRobot calibration JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CalibrationError(f"cannot read the LeRobot calibration {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CalibrationError(f"{path} is not a LeRobot calibration ({{motor: {{id, drive_mode, homing_offset, "
                               "range_min, range_max}}}})")
    return from_lerobot(data, robot, instance, names, servo_homing)
