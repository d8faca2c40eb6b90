"""`embodied demo`: the main job on built-in defaults.

For now: scripted-expert rollouts of every robot on one task, a video per robot, and the
success table. Later stages (training, export, emulated deployment) extend this command.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import robots
from embodied.eval import RolloutJob, run_jobs, success_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on built-in defaults (expert rollouts of every robot)")
    p.add_argument("--task", default="place", help="task every robot performs (default: place)")
    p.add_argument("--episodes", type=int, default=20, help="seeded episodes per robot")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="out/demo", help="folder for videos and summary.json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = robots.available()
    jobs = [RolloutJob(r, args.task, seed, video=str(out / f"{r}_{args.task}.mp4") if seed == 0 else None)
            for r in names for seed in range(args.episodes)]
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers=args.workers, desc=f"expert rollouts ({args.task})")
    table = success_table(results)
    print(f"\nScripted experts, task '{args.task}', {args.episodes} seeded episodes per robot "
          f"({time.perf_counter() - t0:.0f} s on {args.workers} workers):")
    print(f"  {'robot':<8} success rate [95% CI]")
    for (robot, _), rate in table.items():
        print(f"  {robot:<8} {rate}")
    print("  videos: " + ", ".join(sorted(r.video for r in results if r.video)))
    summary = {"task": args.task, "episodes": args.episodes,
               "robots": {robot: {"successes": s.successes, "episodes": s.episodes, "rate": s.rate,
                                  "ci95": list(s.interval)} for (robot, _), s in table.items()},
               "examples": {r.robot: r.instruction for r in results if r.seed == 0}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"  summary: {out / 'summary.json'}")
    return 0
