"""`embodied record`: teleoperated demonstrations, in simulation (keyboard, gamepad) or on
hardware with a leader arm driving a follower arm (`--teleop leader`)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="teleoperate a simulated robot (keyboard or gamepad) or a real follower arm "
                                      "with a leader arm, and save episodes")
    p.add_argument("--robot", required=True, help="the (follower) robot")
    p.add_argument("--task", help="simulation: task name (required); leader: the task string stored with episodes")
    p.add_argument("--teleop", choices=["keyboard", "gamepad", "leader"], default="keyboard")
    p.add_argument("--out", required=True, help="episode store (created, or appended to)")
    p.add_argument("--episodes", type=int, help="stop after saving this many")
    leader = p.add_argument_group("leader arm (--teleop leader)")
    leader.add_argument("--port", help="serial port of the follower arm")
    leader.add_argument("--leader-port", help="serial port of the leader arm")
    leader.add_argument("--leader-robot", help="robot of the leader arm (default: --robot)")
    leader.add_argument("--instance", default="default", help="calibration instance of the follower arm")
    leader.add_argument("--leader-instance", default="default", help="calibration instance of the leader arm")
    leader.add_argument("--camera", action="append", default=[], metavar="NAME=SOURCE",
                        help="record an OpenCV camera (device index or path) as the robot camera NAME "
                             "(repeatable; needs opencv-python-headless)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.teleop == "leader":
        return run_leader(args)
    import robots
    from embodied.collect.record import PygameDisplay, record
    from embodied.collect.teleop_input import headless, make_input
    from embodied.data.store import open_robot_store
    from embodied.errors import EmbodiedError
    from sim_scenes.env import TaskEnv

    if not args.task:
        raise EmbodiedError("record in simulation needs --task (e.g. --task lift)")
    if headless():
        raise EmbodiedError("record needs a display for its camera window (DISPLAY is not set); run it on a desktop, "
                            "or drive embodied.collect.record.record() with a ScriptedInput for headless use")
    robot = robots.load(args.robot)
    store = open_robot_store(args.out, robot, {c.name: (c.height, c.width) for c in robot.cameras})
    start = store.num_episodes
    summary = record(TaskEnv(args.task, args.robot, images=True), make_input(args.teleop), store, PygameDisplay(),
                     max_episodes=args.episodes, first_seed=max(store.seeds(), default=-1) + 1)
    print(f"{args.out}: saved {summary.saved} episodes (discarded {summary.discarded}); the store holds "
          f"{start + summary.saved}")
    return 0


def _cameras(flags: list[str], robot) -> dict[str, tuple[str | int, tuple[int, int]]]:
    """{name: (device index or path, (height, width))} from NAME=SOURCE flags; names and
    resolutions are the robot's cameras (robot.toml), so stores pool with simulated ones."""
    from embodied.deploy.cameras import parse_camera_specs
    from embodied.errors import EmbodiedError

    out = {}
    for name, source in parse_camera_specs(flags).items():
        try:
            cam = robot.camera(name)
        except KeyError as e:
            raise EmbodiedError(str(e.args[0])) from None
        out[name] = (source, (cam.height, cam.width))
    return out


def run_leader(args: argparse.Namespace) -> int:
    import robots
    from embodied.collect.leader import TerminalKeys, teleoperate
    from embodied.data.store import open_robot_store
    from embodied.deploy.cameras import OpenCVCamera
    from embodied.errors import EmbodiedError
    from firmware_bridge.bus import ServoBus
    from firmware_bridge.calibration import Calibration, calibration_path, load_calibration
    from firmware_bridge.errors import BridgeError
    from firmware_bridge.monitor import BlackBox

    if not (args.port and args.leader_port):
        raise EmbodiedError("--teleop leader needs --leader-port (the arm you move) and --port (the follower)")
    follower_robot = robots.load(args.robot)
    leader_robot = robots.load(args.leader_robot or args.robot)

    def calibration(robot, instance: str) -> Calibration:
        if calibration_path(robot.name, instance).exists():
            return load_calibration(robot.name, instance)
        print(f"note: no calibration {calibration_path(robot.name, instance)}; using robot.toml's offsets "
              f"(run `embodied robots calibrate --robot {robot.name} --instance {instance}`)", file=sys.stderr)
        return Calibration.from_spec(robot)

    cameras = {}
    try:
        if follower_robot.bus is None or leader_robot.bus is None:
            raise EmbodiedError("both arms need a [bus] in their robot.toml")
        specs = _cameras(args.camera, follower_robot)
        store = open_robot_store(args.out, follower_robot, {n: size for n, (_, size) in specs.items()})
        start = store.num_episodes
        for name, (source, size) in specs.items():
            cameras[name] = OpenCVCamera(source, size, name)
        leader = ServoBus(leader_robot.bus, args.leader_port,
                          calibration=calibration(leader_robot, args.leader_instance))
        follower = ServoBus(follower_robot.bus, args.port, calibration=calibration(follower_robot, args.instance))
        blackbox = BlackBox.create("out/blackbox", follower_robot.name, {"mode": "leader teleoperation"})
        print(f"black box: {blackbox.path}")
        with leader, follower, TerminalKeys() as keys:
            print("Enter: start / save an episode   Backspace or d: discard   r: re-record   q: quit")
            summary = teleoperate(leader, follower, follower_robot, leader_robot, keys, store,
                                  task=args.task or "leader teleoperation", cameras=cameras,
                                  max_episodes=args.episodes,
                                  on_status=lambda line: print(f"\r{line:<60}", end="", flush=True),
                                  blackbox=blackbox)
    except BridgeError as e:
        raise EmbodiedError(str(e)) from e
    except KeyboardInterrupt:
        print("\ninterrupted: the follower holds its pose; the unsaved episode was dropped")
        return 130
    finally:
        for cam in cameras.values():
            cam.close()
    print(f"\n{args.out}: saved {summary.saved} episodes (discarded {summary.discarded}); the store holds "
          f"{start + summary.saved}")
    return 0
