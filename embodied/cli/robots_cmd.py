"""`embodied robots [show NAME]`: list robots, or print one RobotSpec.
`embodied robots calibrate --robot R --port P [--instance NAME] [--import-lerobot FILE]`:
calibrate one physical arm (the prompts live here; the procedure is
`firmware_bridge.calibration.CalibrationRecorder`)."""

from __future__ import annotations

import argparse
import select
import sys
import time
from collections.abc import Callable

import robots


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robots", help="list robots, show one robot's spec, or calibrate a physical arm")
    p.add_argument("action", nargs="?", choices=["list", "show", "calibrate"], default="list")
    p.add_argument("name", nargs="?", help="robot name or path of a robot folder (for 'show')")
    cal = p.add_argument_group("calibrate")
    cal.add_argument("--robot", help="robot to calibrate")
    cal.add_argument("--port", help="serial port of the arm")
    cal.add_argument("--instance", default="default", help="name of this physical arm (default: 'default')")
    cal.add_argument("--import-lerobot", metavar="FILE", help="import a LeRobot calibration JSON instead of "
                     "recording one (with --port, the servos' homing offset registers are read first)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "calibrate":
        return calibrate(args)
    if args.action == "show":
        if not args.name:
            raise SystemExit("embodied robots show: give a robot name, e.g. 'embodied robots show so100'")
        print(describe(robots.load(args.name)))
        return 0
    print(f"{'robot':<8} {'dof':>3} {'hz':>5} {'reach':>6}  {'cameras':<30} {'bus':<26} description")
    for name in robots.available():
        r = robots.load(name)
        bus = f"{r.bus.protocol} @ {r.bus.baudrate}" if r.bus else "simulation only"
        cams = ", ".join(f"{c.name}({c.mount})" for c in r.cameras)
        print(f"{name:<8} {len(r.joints):>3} {r.control_hz:>5.0f} {r.reach:>5.2f}m  {cams:<30} {bus:<26} {r.description}")
    return 0


def describe(r: robots.RobotSpec) -> str:
    lines = [f"{r.name}: {r.description}", f"  model        {r.mjcf}", f"  spec hash    {r.hash}",
             f"  control      {r.control_hz:g} Hz", f"  reach        {r.reach} m   payload {r.payload} kg",
             f"  action       {r.action_dim} = {', '.join(r.action_names)} (joint targets [rad], gripper [0 closed, 1 open])",
             "  joints       name              kind    range [rad]         home    vmax [rad/s]"]
    for j in r.joints:
        lines.append(f"               {j.name:<17} {j.kind:<7} [{j.range[0]:+.3f}, {j.range[1]:+.3f}]  {j.home:+.3f}  {j.max_velocity:g}")
    g = r.gripper
    lines.append(f"  gripper      joint {g.joint}: closed {g.closed} .. open {g.open}")
    for c in r.cameras:
        where = f"pos {list(c.pos)} lookat {list(c.lookat)}" if c.mount == "scene" else "on the gripper (MJCF)"
        lines.append(f"  camera       {c.name}: {c.mount}, {c.width}x{c.height}, fovy {c.fovy:g}, {where}")
    w = r.workspace
    lines.append(f"  workspace    center {list(w.center)} m, size {list(w.size)} m, cube edge {w.object_size} m")
    if r.bus:
        lines.append(f"  bus          {r.bus.protocol} at {r.bus.baudrate} baud")
        for s in r.bus.servos:
            lines.append(f"               id {s.id:<3} {s.model:<12} -> {s.joint} (direction {s.direction:+d}, offset {s.offset} rad)")
    else:
        lines.append("  bus          none (simulation only)")
    lines += [f"  source       {s}" for s in r.sources]
    return "\n".join(lines)


# --- calibrate -------------------------------------------------------------------------
def _enter_pressed() -> bool:
    """Whether a line was typed on stdin (consumed), without blocking."""
    if select.select([sys.stdin], [], [], 0)[0]:
        sys.stdin.readline()
        return True
    return False


def record_calibration(bus, robot: robots.RobotSpec, instance: str, wait: Callable[[str], object] = input,
                       done: Callable[[], bool] = _enter_pressed, period: float = 0.02):
    """The interactive procedure on a connected `ServoBus`: torque off, the calibration pose,
    then the sweep of every joint until `done()`; returns the `Calibration`."""
    from firmware_bridge.calibration import CalibrationRecorder
    from firmware_bridge.tables import Reg

    recorder = CalibrationRecorder(robot)
    bus.torque(False)
    pose = ", ".join(f"{j} {q:+.2f}" for j, q in recorder.pose_rad.items())
    wait(f"Torque is off. Move {robot.name} to the middle of its range ({pose} rad), then press Enter ")
    recorder.home(bus.sync_read(Reg.PRESENT_POSITION))
    print("Move every joint, gripper included, from one end of its range to the other; press Enter when done.")
    names = {s.id: s.joint for s in robot.bus.servos}
    while True:
        recorder.sample(bus.sync_read(Reg.PRESENT_POSITION))
        row = "  ".join(f"{names[i]} [{recorder.low[i]}, {recorder.high[i]}]" for i in names)
        print(f"\r{row}", end="", flush=True)
        if done():
            still = recorder.unmoved()
            if not still:
                break
            print(f"\nnot moved yet: {', '.join(still)}; move them, then press Enter again")
        time.sleep(period)
    print()
    return recorder.result(instance)


def calibrate(args: argparse.Namespace) -> int:
    from embodied.errors import EmbodiedError
    from firmware_bridge.bus import ServoBus
    from firmware_bridge.calibration import load_lerobot
    from firmware_bridge.errors import BridgeError
    from firmware_bridge.tables import Reg

    if not args.robot:
        raise EmbodiedError("calibrate needs --robot (and --port, unless importing with --import-lerobot)")
    robot = robots.load(args.robot)
    if robot.bus is None:
        raise EmbodiedError(f"robot {robot.name!r} is simulation only (no [bus] in its robot.toml)")
    if not args.port and not args.import_lerobot:
        raise EmbodiedError("calibrate needs --port, the serial port of the arm")
    try:
        if args.import_lerobot:
            homing = None
            if args.port:
                with ServoBus(robot.bus, args.port) as bus:
                    homing = {i: bus.read(Reg.HOMING_OFFSET, i) for i in bus.ids}
            cal = load_lerobot(args.import_lerobot, robot, args.instance, servo_homing=homing)
        else:
            with ServoBus(robot.bus, args.port) as bus:
                cal = record_calibration(bus, robot, args.instance)
        path = cal.save()
    except BridgeError as e:
        raise EmbodiedError(str(e)) from e
    print(f"saved {path}")
    for s in cal.servos:
        lo, hi = s.range_rad()
        print(f"  {s.joint:<15} id {s.id:<3} direction {s.direction:+d}  homing {s.homing_offset:8.1f} ticks  "
              f"range [{s.range_min}, {s.range_max}] ticks = [{lo:+.2f}, {hi:+.2f}] rad")
    return 0
