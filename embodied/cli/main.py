"""`embodied`: one command line, one module per subcommand."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering; set before mujoco is imported

from embodied.cli import bench, data, demo, emulate, record, robots_cmd, sim, simgen  # noqa: E402
from embodied.cli import deploy  # noqa: E402
from embodied.cli import eval as eval_cmd, export, finetune, train  # noqa: E402

SUBCOMMANDS = {"robots": robots_cmd, "sim": sim, "simgen": simgen, "record": record, "data": data, "demo": demo, "bench": bench, "emulate": emulate,
               "train": train, "finetune": finetune, "eval": eval_cmd, "export": export,
               "deploy": deploy}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embodied", description="Cross-embodiment robot learning: robots, "
                                     "simulated task scenes, scripted experts.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from robots import RobotsError
    from sim_scenes import SimScenesError
    from embodied.errors import EmbodiedError

    try:
        return int(args.run(args) or 0)
    except (RobotsError, SimScenesError, EmbodiedError) as e:
        print(f"embodied {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
