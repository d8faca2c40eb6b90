"""`embodied eval`: seeded rollouts of a trained policy; success rate with a 95% interval."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained policy in simulation (seeded, parallel; JSON out)")
    p.add_argument("--policy", required=True, help="run folder (runs/X) or checkpoint folder")
    p.add_argument("--robot", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--video", metavar="DIR", help="write mp4s of the first episodes here")
    p.add_argument("--videos", type=int, default=2, help="how many episodes get a video (default 2)")
    p.add_argument("--instructions", choices=["train", "heldout"], default="train")
    p.add_argument("--seed0", type=int, help="first episode seed (default 100000, away from demo seeds)")
    p.add_argument("--execute", type=int, default=0, help="actions run open loop per chunk (default 0: whole chunk)")
    p.add_argument("--ensemble", action="store_true", help="query every step and temporally ensemble the chunks")
    p.add_argument("--cache", help="instruction-embedding cache folder")
    p.add_argument("--out", help="JSON file (default: POLICY_RUN/eval/ROBOT_TASK_INSTRUCTIONS.json)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.eval import EvalConfig, Execution, evaluate
    from embodied.eval.evaluate import DEFAULT_SEED0
    from embodied.train.rundir import resolve_policy

    execution = Execution("ensemble" if args.ensemble else "open_loop", args.execute)
    cfg = EvalConfig(args.policy, args.robot, args.task, args.episodes, args.workers, args.instructions,
                     DEFAULT_SEED0 if args.seed0 is None else args.seed0, args.video, args.videos, execution, args.cache)
    report = evaluate(cfg)
    ckpt = resolve_policy(args.policy)
    out = Path(args.out or (ckpt.parent if ckpt.name == "last" else ckpt) / "eval" /
               f"{args.robot}_{args.task}_{args.instructions}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lo, hi = report["ci95"]
    print(f"{args.robot}/{args.task} ({args.instructions} instructions): success {100 * report['success_rate']:.1f}% "
          f"[{100 * lo:.1f}, {100 * hi:.1f}] ({report['successes']}/{report['episodes']}), "
          f"{report['infer_ms_mean']:.1f} ms per chunk, {report['wall_s']:.0f} s on {args.workers} workers")
    if report["videos"]:
        print("videos: " + ", ".join(report["videos"]))
    print(f"saved {out}")
    return 0
