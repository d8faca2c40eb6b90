"""`embodied sim rollout`: roll out the scripted expert in a task scene and save a video."""

from __future__ import annotations

import argparse

from embodied.media import write_mp4


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulated task scenes: roll out an expert, save a video")
    sim_sub = p.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    r = sim_sub.add_parser("rollout", help="one seeded expert rollout, printed result, optional video")
    r.add_argument("--robot", default="so100")
    r.add_argument("--task", default="lift")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--instructions", choices=["train", "heldout"], default="train")
    r.add_argument("--video", help="write an mp4 of the rollout here")
    r.set_defaults(run=rollout)


def rollout(args: argparse.Namespace) -> int:
    from sim_scenes.env import TaskEnv
    from sim_scenes.rollout import run_expert

    env = TaskEnv(args.task, args.robot, render_mode="rgb_array" if args.video else None, images=False)
    ep = run_expert(env, args.seed, record=bool(args.video), instruction_set=args.instructions)
    print(f"robot: {args.robot}  task: {args.task}  seed: {args.seed}")
    print(f"instruction: {ep.instruction}")
    print(f"steps: {ep.steps} ({ep.steps / env.robot.control_hz:.1f} s)")
    if args.video:
        print(f"video: {write_mp4(args.video, ep.frames, env.robot.control_hz)}")
    print(f"success: {str(ep.success).lower()}")
    env.close()
    return 0 if ep.success else 1
