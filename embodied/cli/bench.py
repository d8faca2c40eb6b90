"""`embodied bench SUBJECT`: run a benchmark, print its JSON and save it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from embodied.bench.deploy_loop import SEED0


def _sim(args: argparse.Namespace) -> dict:
    from embodied.bench import sim

    return sim.run(seeds=args.seeds, workers=args.workers)


def _data(args: argparse.Namespace) -> dict:
    from embodied.bench import data

    return data.run(episodes=args.episodes, frames=args.frames, samples=args.samples, workers=args.workers)


def _bridge(args: argparse.Namespace) -> dict:
    from embodied.bench import bridge

    return bridge.run(duration=args.duration)


def _policy(args: argparse.Namespace) -> dict:
    from embodied.bench import policy

    return policy.run()


def _deploy(args: argparse.Namespace) -> dict:
    from embodied.bench import deploy
    from embodied.errors import ConfigError

    if not (args.policy and args.robot):
        raise ConfigError("bench deploy measures the policy you will deploy: give --policy runs/X --robot R "
                          "(train one with `embodied train ... --preset small`)")
    if args.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, found {args.rounds}")
    if args.deploy_episodes < 0 or (args.deploy_seconds is not None and args.deploy_seconds <= 0):
        raise ConfigError(f"--deploy-episodes must be >= 0 (0: skip the deploy loop) and --deploy-seconds > 0; "
                          f"found {args.deploy_episodes}, {args.deploy_seconds}")
    loop = deploy.LoopBench(args.task, args.deploy_episodes, args.fault_profile, args.deploy_seconds, args.deploy_seed0) \
        if args.deploy_episodes else None
    return deploy.run(args.policy, args.robot, args.instructions, args.calibration_data, calls=args.calls,
                      threads=args.threads, rounds=args.rounds, cache=args.cache, loop=loop, blackbox_dir=_out(args).parent)


SUBJECTS = {"sim": _sim, "data": _data, "bridge": _bridge, "policy": _policy, "deploy": _deploy}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (JSON out): sim, data, bridge, policy, deploy")
    p.add_argument("subject", choices=sorted(SUBJECTS))
    p.add_argument("--seeds", type=int, default=50, help="seeded expert episodes per robot x task")
    p.add_argument("--workers", type=int, default=2, help="rollout processes (sim), DataLoader workers (data)")
    p.add_argument("--episodes", type=int, default=200, help="data: synthetic episodes per store")
    p.add_argument("--frames", type=int, default=100, help="data: frames per episode")
    p.add_argument("--samples", type=int, default=20_000, help="data: samples drawn per measurement")
    p.add_argument("--duration", type=float, default=60.0, help="bridge: length of the 50 Hz loop [s]")
    p.add_argument("--policy", help="deploy: run folder or checkpoint to export and time")
    p.add_argument("--robot", help="deploy: the robot of the bundle")
    p.add_argument("--instructions", nargs="+", default=[], metavar="TEXT", help="deploy: exported instructions")
    p.add_argument("--calibration-data", metavar="DIR", help="deploy: dataset for static int8 recipes")
    p.add_argument("--calls", type=int, default=200, help="deploy: timed calls per runtime after warm-up")
    p.add_argument("--threads", type=int, default=1,
                   help="deploy: intra-op threads of every runtime (default 1, as `embodied deploy` runs inference: "
                        "the other core serves the bus and cameras)")
    p.add_argument("--rounds", type=int, default=3,
                   help="deploy: interleaved timing rounds (each runtime once per round, fresh process each)")
    p.add_argument("--cache", help="deploy: instruction-embedding cache folder")
    p.add_argument("--deploy-episodes", type=int, default=10,
                   help="deploy: seeded episodes of the deploy loop per fault profile (0: skip it)")
    p.add_argument("--task", default="lift", help="deploy: task scene of the deploy loop (default lift)")
    p.add_argument("--fault-profile", default="flaky", metavar="NAME|PATH",
                   help="deploy: profile of the faulty deploy-loop run (default flaky), compared with none")
    p.add_argument("--deploy-seed0", type=int, default=SEED0,
                   help=f"deploy: first seed of the deploy-loop episodes (default {SEED0}: the eval seeds)")
    p.add_argument("--deploy-seconds", type=float, help="deploy: longest deploy-loop episode [s] "
                                                        "(default: the task's time limit)")
    p.add_argument("--out", help="JSON file (default: out/bench/SUBJECT.json; deploy writes its black boxes beside it)")
    p.set_defaults(run=run)


def _out(args: argparse.Namespace) -> Path:
    return Path(args.out or f"out/bench/{args.subject}.json")


def run(args: argparse.Namespace) -> int:
    result = SUBJECTS[args.subject](args)
    text = json.dumps(result, indent=2)
    print(text)
    out = _out(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"saved {out}")
    return 0
