"""RobotSpec: what a robot is, read from its `robot.toml`.

A robot folder is the single source of truth for joints, limits, home pose, gripper,
cameras, control rate, workspace and servo bus. SI units everywhere: angles in [rad],
lengths in [m], rates in [Hz].

Action convention (every robot): absolute joint position targets in [rad] for the arm
joints, in spec order, followed by one gripper command in [0, 1] (0 = closed, 1 = open).
Proprioceptive state uses the same layout: measured joint positions, then the measured
gripper opening in [0, 1].
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from robots.errors import SpecError
from robots.safety import DEFAULT_REACTIONS, FAULT_KINDS, REACTIONS, SafetySpec

JointKind = Literal["hinge", "slide"]
CameraMount = Literal["wrist", "scene"]
PROTOCOLS = ("dynamixel_2", "feetech_sts")


@dataclass(frozen=True)
class JointSpec:
    name: str
    kind: JointKind
    range: tuple[float, float]  # [rad] or [m]
    home: float
    max_velocity: float  # [rad/s] or [m/s]


@dataclass(frozen=True)
class GripperSpec:
    joint: str
    closed: float  # joint position when the command is 0, in joint units
    open: float  # joint position when the command is 1

    def to_joint(self, command: float) -> float:
        """Gripper command in [0, 1] -> joint position."""
        return self.closed + min(max(command, 0.0), 1.0) * (self.open - self.closed)

    def to_command(self, joint_pos: float) -> float:
        """Joint position -> gripper opening in [0, 1]."""
        return (joint_pos - self.closed) / (self.open - self.closed)


@dataclass(frozen=True)
class CameraSpec:
    name: str
    mount: CameraMount  # "wrist": defined in the MJCF on a moving body; "scene": fixed in the world
    fovy: float  # vertical field of view [deg]
    width: int
    height: int
    pos: tuple[float, float, float] | None = None  # scene cameras: position in the robot base frame [m]
    lookat: tuple[float, float, float] | None = None  # scene cameras: point looked at [m]


@dataclass(frozen=True)
class ServoSpec:
    joint: str  # a joint name, or the gripper joint
    id: int
    model: str  # e.g. "sts3215", "xl430-w250"
    direction: int = 1  # +1 or -1: sign between servo ticks and the joint angle
    offset: float = 0.0  # joint angle [rad] at the servo's zero position


@dataclass(frozen=True)
class BusSpec:
    protocol: str  # one of PROTOCOLS
    baudrate: int
    servos: tuple[ServoSpec, ...]


@dataclass(frozen=True)
class WorkspaceSpec:
    """Rectangle on the table where task objects are placed, in the robot base frame."""

    center: tuple[float, float]  # [m]
    size: tuple[float, float]  # full extent along x and y [m]
    object_size: float  # edge of a task cube [m]; containers and zones scale with it

    @property
    def corners(self) -> list[tuple[float, float]]:
        (cx, cy), (sx, sy) = self.center, self.size
        return [(cx + dx * sx / 2, cy + dy * sy / 2) for dx in (-1, 1) for dy in (-1, 1)]


@dataclass(frozen=True)
class RobotSpec:
    name: str
    description: str
    root: Path  # the robot's folder
    mjcf: Path  # the robot's MJCF model (may lie outside the folder)
    control_hz: float
    reach: float  # horizontal reach of the ee site from the base axis [m]
    payload: float  # [kg]
    joints: tuple[JointSpec, ...]
    gripper: GripperSpec
    cameras: tuple[CameraSpec, ...]
    workspace: WorkspaceSpec
    bus: BusSpec | None = None
    ee_site: str = "ee"
    sources: tuple[str, ...] = field(default=())
    safety: SafetySpec = field(default_factory=SafetySpec)

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def action_dim(self) -> int:
        return len(self.joints) + 1

    @property
    def state_names(self) -> list[str]:
        return [*self.joint_names, "gripper"]

    @property
    def action_names(self) -> list[str]:
        return [*self.joint_names, "gripper"]

    @property
    def home(self) -> list[float]:
        return [j.home for j in self.joints]

    @property
    def sim_only(self) -> bool:
        return self.bus is None

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"robot {self.name!r} has no camera {name!r}; cameras: {[c.name for c in self.cameras]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (paths as strings), e.g. for snapshots stored with datasets."""
        d = asdict(self)
        d["root"], d["mjcf"] = str(self.root), str(self.mjcf)
        return d

    @property
    def hash(self) -> str:
        """Content hash of everything that changes what actions and states mean."""
        d = self.to_dict()
        for key in ("root", "mjcf", "description", "sources", "safety"):
            d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class _Table:
    """Typed reads from one TOML table, with errors that name the file and the field."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = ""):
        self.path, self.data, self.prefix = path, data, prefix

    def _fail(self, key: str, problem: str, fix: str) -> SpecError:
        return SpecError(str(self.path), self.prefix + key, problem, fix)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., fix: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "missing", fix or f"add '{key} = ...' (see robots/so100/robot.toml)")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self._fail(key, f"expected {getattr(kind, '__name__', kind)}, found {value!r}", fix or "correct the type")
        return value

    def vector(self, key: str, n: int, default: Any = ...) -> tuple[float, ...] | None:
        value = self.get(key, list, default)
        if value is None:
            return None
        if len(value) != n or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
            raise self._fail(key, f"expected {n} finite numbers, found {value!r}", f"write {n} numbers")
        return tuple(float(v) for v in value)

    def tables(self, key: str, default: Any = ...) -> list[_Table]:
        items = self.get(key, list, default)
        return [_Table(self.path, item, f"{self.prefix}{key}[{i}].") for i, item in enumerate(items or [])]

    def table(self, key: str, default: Any = ...) -> _Table | None:
        value = self.get(key, dict, default)
        return None if value is None else _Table(self.path, value, f"{self.prefix}{key}.")


def _joint(t: _Table) -> JointSpec:
    kind = t.get("kind", str, "hinge")
    if kind not in ("hinge", "slide"):
        raise t._fail("kind", f"unknown joint kind {kind!r}", "use 'hinge' or 'slide'")
    lo, hi = t.vector("range", 2)
    if not lo < hi:
        raise t._fail("range", f"limits reversed or empty: [{lo}, {hi}]", "write [lower, upper] with lower < upper")
    home = t.get("home", float, 0.0)
    if not lo <= home <= hi:
        raise t._fail("home", f"{home} lies outside range [{lo}, {hi}]", "choose a home inside the joint range")
    vmax = t.get("max_velocity", float)
    if vmax <= 0:
        raise t._fail("max_velocity", f"must be positive, found {vmax}", "write the joint's no-load speed")
    return JointSpec(t.get("name", str), kind, (lo, hi), home, vmax)


def _camera(t: _Table) -> CameraSpec:
    mount = t.get("mount", str)
    if mount not in ("wrist", "scene"):
        raise t._fail("mount", f"unknown mount {mount!r}", "use 'wrist' (camera in the MJCF) or 'scene'")
    width, height = t.vector("resolution", 2)
    if not (width == int(width) > 0 and height == int(height) > 0):
        raise t._fail("resolution", f"expected two positive integers [width, height], found {[width, height]}", "write e.g. [96, 96]")
    width, height = int(width), int(height)
    pos = t.vector("pos", 3, None)
    lookat = t.vector("lookat", 3, None)
    if mount == "scene" and (pos is None or lookat is None):
        raise t._fail("pos", "a scene camera needs 'pos' and 'lookat'", "add pos = [x, y, z] and lookat = [x, y, z]")
    return CameraSpec(t.get("name", str), mount, t.get("fovy", float, 60.0), width, height, pos, lookat)


def _bus(t: _Table) -> BusSpec:
    protocol = t.get("protocol", str)
    if protocol not in PROTOCOLS:
        raise t._fail("protocol", f"unknown protocol {protocol!r}", f"use one of {PROTOCOLS}")
    servos = []
    for s in t.tables("servos"):
        direction = s.get("direction", int, 1)
        if direction not in (1, -1):
            raise s._fail("direction", f"must be 1 or -1, found {direction}", "write 1 or -1")
        servos.append(ServoSpec(s.get("joint", str), s.get("id", int), s.get("model", str), direction, s.get("offset", float, 0.0)))
    ids = [s.id for s in servos]
    if len(set(ids)) != len(ids):
        raise t._fail("servos", f"duplicate servo ids {ids}", "give every servo on the bus its own id")
    return BusSpec(protocol, t.get("baudrate", int), tuple(servos))


_SAFETY_NUMBERS = ("temperature_warn", "temperature_hysteresis", "voltage_tolerance", "load_max", "tracking_error",
                   "stale_after", "latency_max", "limit_margin", "position_tolerance", "velocity_factor",
                   "step_factor", "slow_speed")


def _safety(t: _Table | None, joint_names: list[str], gripper: str) -> SafetySpec:
    if t is None:
        return SafetySpec()
    kwargs: dict[str, Any] = {k: t.get(k, float) for k in _SAFETY_NUMBERS if k in t.data}
    kwargs.update({k: t.get(k, int) for k in ("confirm_cycles", "escalate_cycles", "recover_cycles") if k in t.data})
    kwargs.update({k: t.get(k, bool) for k in ("falls_when_limp", "torque_off_at_shutdown") if k in t.data})
    if "gripper_range" in t.data:
        kwargs["gripper_range"] = t.vector("gripper_range", 2)
    pose = t.get("safe_pose", dict, {})
    for name, angle in pose.items():
        if name not in [*joint_names, gripper] or not isinstance(angle, (int, float)):
            raise t._fail("safe_pose", f"{name} = {angle!r}", f"name joints of {joint_names + [gripper]} with angles [rad]")
    kwargs["safe_pose"] = {k: float(v) for k, v in pose.items()}
    reactions = t.get("reactions", dict, {})
    for kind, chain in reactions.items():
        if kind not in FAULT_KINDS or not isinstance(chain, list):
            raise t._fail(f"reactions.{kind}", f"unknown fault kind or not a list: {chain!r}",
                          f"use kinds {FAULT_KINDS} with lists of {REACTIONS}")
    kwargs["reactions"] = {**DEFAULT_REACTIONS, **{k: tuple(v) for k, v in reactions.items()}}
    try:
        return SafetySpec(**kwargs)
    except ValueError as e:
        raise t._fail("reactions", str(e), "fix the [safety] table") from e


def parse(path: Path) -> RobotSpec:
    """Read and validate a robot.toml; raise SpecError naming the file and the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SpecError(str(path), "<file>", f"not valid TOML ({e})", "fix the syntax") from e
    t = _Table(path, data)
    joints = tuple(_joint(j) for j in t.tables("joints"))
    if not joints:
        raise t._fail("joints", "no joints", "add [[joints]] tables")
    names = [j.name for j in joints]
    if len(set(names)) != len(names):
        raise t._fail("joints", f"duplicate joint names {names}", "give every joint its own name")
    g = t.table("gripper")
    gripper = GripperSpec(g.get("joint", str), g.get("closed", float), g.get("open", float))
    if gripper.closed == gripper.open:
        raise g._fail("open", "open equals closed", "write the joint positions of the open and closed gripper")
    cameras = tuple(_camera(c) for c in t.tables("cameras"))
    w = t.table("workspace")
    workspace = WorkspaceSpec(w.vector("center", 2), w.vector("size", 2), w.get("object_size", float))
    reach = t.get("reach", float)
    far = max(math.hypot(x, y) for x, y in workspace.corners)
    if far > reach:
        raise w._fail(
            "center", f"the workspace corner farthest from the base lies {far:.3f} m away, beyond the reach of {reach:.3f} m",
            "move workspace.center closer to the base or shrink workspace.size",
        )
    bus_table = t.table("bus", None)
    bus = _bus(bus_table) if bus_table else None
    if bus:
        for s in bus.servos:
            if s.joint not in names and s.joint != gripper.joint:
                raise bus_table._fail("servos", f"servo id {s.id} drives unknown joint {s.joint!r}", f"use one of {names + [gripper.joint]}")
    mjcf = Path(t.get("mjcf", str)).expanduser()
    mjcf = mjcf if mjcf.is_absolute() else path.parent / mjcf
    if not mjcf.is_file():
        raise t._fail("mjcf", f"model file {mjcf} does not exist", "point 'mjcf' at the robot's MJCF file (relative to this folder or absolute)")
    hz = t.get("control_hz", float)
    if hz <= 0:
        raise t._fail("control_hz", f"must be positive, found {hz}", "write the control rate in Hz")
    return RobotSpec(
        name=t.get("name", str), description=t.get("description", str, ""), root=path.parent, mjcf=mjcf,
        control_hz=hz, reach=reach, payload=t.get("payload", float, 0.0), joints=joints, gripper=gripper,
        cameras=cameras, workspace=workspace, bus=bus, ee_site=t.get("ee_site", str, "ee"),
        sources=tuple(t.get("sources", list, [])), safety=_safety(t.table("safety", None), names, gripper.joint),
    )
