"""`embodied simgen`: scripted-expert demonstrations into an episode store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simgen", help="generate expert demonstrations in simulation (parallel, resumable)")
    p.add_argument("--robot", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, required=True, help="episodes the store should hold when done")
    p.add_argument("--out", required=True, help="episode store folder (created, or resumed if it exists)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--keep-failed", action="store_true", help="also keep episodes the expert failed")
    p.add_argument("--instructions", choices=["train", "heldout"], default="train")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--pace", type=float, default=1.0, help="expert speed factor (default 1; 0.5: half as fast, "
                   "twice the frames per demonstration)")
    p.add_argument("--variants", type=int, default=1, help="demonstrations per scene (default 1): each seed's "
                   "scene again with other objects in the instruction's roles (another cube, zone or bin), so "
                   "only the instruction tells the demonstrations apart")
    p.add_argument("--settle", type=float, default=None, help="seconds the expert goes on after success, "
                   "recorded; the episode counts only if the task still holds at the end. Default: the task's "
                   "own: 0.5 for place (its release and retreat; so100/place specialists placed 5/50 and 5/50 "
                   "with it, 0/50 and 0/50 without, two seeds), 0 for the others (a demonstration ends at success)")
    p.add_argument("--camera-jitter", type=float, default=0.0, help="in [0, 1] (default 0: robot.toml's poses): "
                   "each episode's scene cameras are moved around the point they look at (distance 0.7-1.8x, "
                   "+-25 deg azimuth, +-12 deg elevation at 1), so the images show the objects at other places "
                   "and sizes; role-pixel labels follow the moved cameras. For grounding data "
                   "(`embodied train --grounding-data`) that teaches the image side views a new arm may have")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.collect.simgen import SimgenConfig, generate

    cfg = SimgenConfig(args.robot, args.task, args.episodes, Path(args.out), args.workers, args.keep_failed,
                       args.instructions, args.first_seed, args.pace, args.variants, args.settle, args.camera_jitter)
    summary = generate(cfg)
    print(f"{args.out}: kept {summary['kept']} new episodes ({summary['failed']} failed and dropped, "
          f"{summary['skipped_existing']} already there)")
    return 0
