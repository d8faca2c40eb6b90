"""`embodied record`: teleoperated demonstrations in simulation."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="teleoperate a simulated robot (keyboard or gamepad) and save episodes")
    p.add_argument("--robot", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--teleop", choices=["keyboard", "gamepad"], default="keyboard")
    p.add_argument("--out", required=True, help="episode store (created, or appended to)")
    p.add_argument("--episodes", type=int, help="stop after saving this many")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import robots
    from embodied.collect.record import PygameDisplay, record
    from embodied.collect.simgen import open_or_create
    from embodied.collect.teleop_input import headless, make_input
    from embodied.errors import EmbodiedError
    from sim_scenes.env import TaskEnv

    if headless():
        raise EmbodiedError("record needs a display for its camera window (DISPLAY is not set); run it on a desktop, "
                            "or drive embodied.collect.record.record() with a ScriptedInput for headless use")
    robot = robots.load(args.robot)
    store = open_or_create(Path(args.out), robot)
    start = store.num_episodes
    summary = record(TaskEnv(args.task, args.robot, images=True), make_input(args.teleop), store, PygameDisplay(),
                     max_episodes=args.episodes, first_seed=max(store.seeds(), default=-1) + 1)
    print(f"{args.out}: saved {summary.saved} episodes (discarded {summary.discarded}); the store holds "
          f"{start + summary.saved}")
    return 0
