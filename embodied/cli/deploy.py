"""`embodied deploy`: an export bundle drives an arm, real (--port, --camera) or emulated
(--emulate: a servo chain on a pty in a MuJoCo task scene, optionally with a fault profile).

Prints one line per episode and the run's summary (faults by kind, limit violations, loop
timing, inference latency, peak memory), and writes it as JSON. Exit status: 0 when every
episode ran to its time or success, 1 after a safe stop (camera fault, torque cut), 130
after Ctrl+C; 2 when the deployment was refused before the arm moved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT = {"time": 0, "success": 0, "torque_off": 1, "camera": 1, "interrupted": 130}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="run an export bundle on an arm (serial port + cameras) or an emulated one")
    p.add_argument("--bundle", required=True, help="bundle folder (`embodied export`)")
    p.add_argument("--instruction", help="what the policy is told (one the bundle was exported with; with "
                                         "--emulate the default is each scene's own phrasing)")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seconds", type=float, default=30.0, help="longest episode [s] (default 30)")
    p.add_argument("--scheduler", choices=["async", "sync", "ensemble"], default="async",
                   help="chunk execution: async (inference overlaps execution, default), sync, ensemble")
    p.add_argument("--precision", choices=["auto", "int8", "fp32"], default="auto",
                   help="model to run (auto: int8 where the bundle has it)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--record", metavar="DIR", help="append every episode to this episode store (source deploy)")
    p.add_argument("--blackbox", metavar="FILE", help="black-box file (default out/blackbox/<robot>-<time>.jsonl)")
    p.add_argument("--json", metavar="OUT", default="out/deploy/summary.json",
                   help="summary JSON (default %(default)s)")
    hw = p.add_argument_group("hardware")
    hw.add_argument("--port", help="serial port of the arm's servo bus, e.g. /dev/ttyUSB0")
    hw.add_argument("--camera", action="append", default=[], metavar="NAME=SOURCE",
                    help="robot camera NAME from a device index or path, e.g. front=0 wrist=/dev/video2 (repeatable; "
                         "needs opencv-python-headless: pip install -e '.[deploy]')")
    hw.add_argument("--robot", help="the arm (default: the bundle's robot; another one is refused)")
    hw.add_argument("--instance", default="default", help="calibration instance of the arm")
    emu = p.add_argument_group("emulation")
    emu.add_argument("--emulate", action="store_true", help="an emulated arm in a MuJoCo task scene, rendered cameras")
    emu.add_argument("--task", default="lift", help="task scene of --emulate (default lift)")
    emu.add_argument("--fault-profile", metavar="NAME|PATH", help="faults of the emulated chain: none, flaky, harsh, "
                                                                  "or a .toml file")
    emu.add_argument("--seed", type=int, default=0, help="seed of the first emulated episode (then +1 each)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.deploy import DeployConfig, DeployError, format_summary

    if args.emulate == bool(args.port):
        raise DeployError("give either --port (and --camera NAME=SOURCE for each camera) or --emulate")
    if not args.emulate and not args.instruction:
        raise DeployError("deploying on hardware needs --instruction \"...\" (one the bundle was exported with)")
    config = DeployConfig(args.bundle, args.instruction, args.episodes, args.seconds, args.scheduler, args.precision,
                          args.threads, args.record, args.blackbox)
    try:
        summary = _emulated(args, config) if args.emulate else _hardware(args, config)
    except KeyboardInterrupt:  # inside an episode the loop brings the arm to rest and returns
        print("interrupted before the arm moved", file=sys.stderr)
        return EXIT["interrupted"]
    print(format_summary(summary))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"  summary: {out}")
    return EXIT.get(summary["stopped"], 0)


def _progress(result) -> None:
    success = "" if result.success is None else f", success {str(result.success).lower()}"
    print(f"episode {result.index} (seed {result.seed}): {result.stopped} after {result.steps} ticks{success}; "
          f"faults {result.faults or 'none'}{'; ' + result.detail if result.detail else ''}", flush=True)


def _emulated(args: argparse.Namespace, config) -> dict:
    from embodied.deploy.emulated import deploy_emulated

    return deploy_emulated(config, args.task, args.fault_profile, args.seed, on_episode=_progress)


def _hardware(args: argparse.Namespace, config) -> dict:
    import robots
    from embodied.deploy import OpenCVCamera, deploy, parse_camera_specs
    from embodied.deploy.errors import DeployError
    from embodied.deploy.preflight import bundle_robot
    from firmware_bridge.bus import ServoBus
    from firmware_bridge.calibration import Calibration, calibration_path, load_calibration
    from firmware_bridge.errors import BridgeError
    from firmware_bridge.pacing import retry

    robot = robots.load(args.robot) if args.robot else bundle_robot(args.bundle)
    if robot.bus is None:
        raise DeployError(f"robot {robot.name!r} has no [bus] in its robot.toml: there is no servo bus to drive")
    if calibration_path(robot.name, args.instance).exists():
        calibration = load_calibration(robot.name, args.instance)
    else:
        print(f"note: no calibration {calibration_path(robot.name, args.instance)}; using robot.toml's offsets "
              f"(run `embodied robots calibrate --robot {robot.name} --instance {args.instance}`)", file=sys.stderr)
        calibration = Calibration.from_spec(robot)
    cameras = {}
    try:
        for name, source in parse_camera_specs(args.camera).items():
            try:
                spec = robot.camera(name)
            except KeyError as e:
                raise DeployError(str(e.args[0])) from None
            cameras[name] = OpenCVCamera(source, (spec.height, spec.width), name)
        bus = ServoBus(robot.bus, args.port, calibration=calibration)
        retry(bus.connect)  # a reply lost while pinging the servos is asked again, like every setup read
        try:
            return deploy(config, robot, bus, cameras, on_episode=_progress)
        finally:
            bus.disconnect()
    except BridgeError as e:
        raise DeployError(f"the servo bus on {args.port}: {e}") from e
    finally:
        for cam in cameras.values():
            cam.close()
