"""`embodied emulate --robot R [--task T]`: an emulated servo chain on a pseudo-terminal.

Prints the port path and serves until Ctrl+C; any tool (a ServoBus, the vendor SDKs,
LeRobot) can open the path as it would a USB adapter. With --task the joints move in a
MuJoCo scene of the robot in that task; without, a first-order plant per joint.
With --fault-profile (a shipped name: none, flaky, harsh; or a .toml path) the chain suffers
that profile's faults, seeded by --fault-seed; on Ctrl+C it prints what it injected.
"""

from __future__ import annotations

import argparse
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("emulate", help="an emulated servo chain on a pty: prints the port, serves until Ctrl+C")
    p.add_argument("--robot", default="so100")
    p.add_argument("--task", help="move the joints in a MuJoCo scene of this task (default: first-order plant)")
    p.add_argument("--seed", type=int, default=0, help="task instance seed (with --task)")
    p.add_argument("--fault-profile", metavar="NAME|PATH",
                   help="inject faults from a profile (shipped: none, flaky, harsh; or a .toml file)")
    p.add_argument("--fault-seed", type=int, help="seed of the profile's random faults (default: the profile's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import robots
    from firmware_bridge.emulator import EmulatedChain, FaultInjector, Plant, load_profile

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
    injector = FaultInjector(load_profile(args.fault_profile), args.fault_seed) if args.fault_profile else None
    chain = EmulatedChain.from_bus_spec(robot.bus, plant=plant, faults=injector, positions_rad=start)
    port = chain.start()
    ids = ", ".join(f"{s.id}:{s.model}" for s in robot.bus.servos)
    print(f"emulated {robot.name} bus ({robot.bus.protocol}, {robot.bus.baudrate} bit/s, servos {ids})"
          f"{' in task ' + args.task if args.task else ''}")
    if injector is not None:
        print(f"fault profile {injector.profile.name} (seed {injector.seed}): {injector.profile.description}")
    print(f"port: {port}", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\nstopped after {chain.packets} packets")
        if injector is not None:
            print(f"faults injected: {injector.counts()}")
    finally:
        chain.stop()
    return 0
