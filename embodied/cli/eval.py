"""`embodied eval`: seeded rollouts of a trained policy (torch checkpoint, or export bundle run
by the torch-free ONNX Runtime engine); success rate with a 95% interval."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained policy in simulation (seeded, parallel; JSON out)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="run folder (runs/X) or checkpoint folder (torch)")
    which.add_argument("--bundle", help="export bundle folder (bundles/R), run with ONNX Runtime, 1 thread per worker")
    p.add_argument("--precision", choices=["auto", "int8", "fp32"], default="auto",
                   help="bundle model to run (default auto: int8 when the bundle has it)")
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
    p.add_argument("--out", help="JSON file (default: POLICY_RUN/eval/ROBOT_TASK_INSTRUCTIONS.json, "
                                 "out/eval/BUNDLE_PRECISION_TASK_INSTRUCTIONS.json for a bundle)")
    p.set_defaults(run=run)


def _default_out(args: argparse.Namespace, report: dict) -> Path:
    if args.bundle:
        name = Path(report["policy"]).name
        return Path("out/eval") / f"{name}_{report['precision']}_{args.task}_{args.instructions}.json"
    ckpt = Path(report["policy"])
    run = ckpt.parent if ckpt.name == "last" else ckpt
    return run / "eval" / f"{args.robot}_{args.task}_{args.instructions}.json"


def run(args: argparse.Namespace) -> int:
    from embodied.eval import EvalConfig, Execution, evaluate
    from embodied.eval.evaluate import DEFAULT_SEED0

    execution = Execution("ensemble" if args.ensemble else "open_loop", args.execute)
    seed0 = DEFAULT_SEED0 if args.seed0 is None else args.seed0
    cfg = EvalConfig(args.bundle or args.policy, args.robot, args.task, args.episodes, args.workers, args.instructions,
                     seed0, args.video, args.videos, execution, args.cache, bundle=args.bundle is not None,
                     precision=args.precision)
    report = evaluate(cfg)
    out = Path(args.out) if args.out else _default_out(args, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lo, hi = report["ci95"]
    runtime = f"{report['runtime']} {report['precision']}"
    print(f"{args.robot}/{args.task} ({args.instructions} instructions, {runtime}): success "
          f"{100 * report['success_rate']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
          f"({report['successes']}/{report['episodes']}), {report['infer_ms_mean']:.1f} ms per chunk, "
          f"{report['wall_s']:.0f} s on {args.workers} workers")
    if report["videos"]:
        print("videos: " + ", ".join(report["videos"]))
    print(f"saved {out}")
    return 0
