"""`embodied robots [show NAME]`: list robots, or print one RobotSpec."""

from __future__ import annotations

import argparse

import robots


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robots", help="list robots, or show one robot's spec")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("name", nargs="?", help="robot name or path of a robot folder (for 'show')")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
