"""`embodied emulate --robot R [--task T]`: an emulated servo chain on a pseudo-terminal.

Prints the port path and serves until Ctrl+C; any tool (a ServoBus, the vendor SDKs,
LeRobot) can open the path as it would a USB adapter. With --task the joints move in a
MuJoCo scene of the robot in that task; without, a first-order plant per joint.
Fault injection plugs in as the chain's `faults` hook (`firmware_bridge.emulator.FaultHook`);
fault profiles come with their own option.
"""

from __future__ import annotations

import argparse
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulate", help="an emulated servo chain on a pty: prints the port, serves until Ctrl+C")
    p.add_argument("--robot", default="so100")
    p.add_argument("--task", help="move the joints in a MuJoCo scene of this task (default: first-order plant)")
    p.add_argument("--seed", type=int, default=0, help="task instance seed (with --task)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import robots
    from firmware_bridge.emulator import EmulatedChain, Plant

    robot = robots.load(args.robot)
    if robot.bus is None:
        raise robots.SpecError(str(robot.root / "robot.toml"), "bus", "missing: there is no servo bus to emulate",
                               "add a [bus] table with protocol, baudrate and servos")
    plant: Plant | None = None
    if args.task:
        from embodied.sim_plant import scene_plant

        plant = scene_plant(args.robot, args.task, args.seed)
    home = dict(zip(robot.joint_names, robot.home))
    start = np.array([home.get(s.joint, 0.0) for s in robot.bus.servos])
    chain = EmulatedChain.from_bus_spec(robot.bus, plant=plant, positions_rad=start)
    port = chain.start()
    ids = ", ".join(f"{s.id}:{s.model}" for s in robot.bus.servos)
    print(f"emulated {robot.name} bus ({robot.bus.protocol}, {robot.bus.baudrate} bit/s, servos {ids})"
          f"{' in task ' + args.task if args.task else ''}")
    print(f"port: {port}", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\nstopped after {chain.packets} packets")
    finally:
        chain.stop()
    return 0
