"""`embodied demo`: the whole pipeline on built-in defaults (see `embodied.demo`).

Simulated demonstrations for three robots, one policy trained on all of them, evaluation,
int8 export through the gates, emulated deployment under faults, and a report. Rerunning
continues where a previous run stopped.
"""

from __future__ import annotations

import argparse

from embodied.demo.config import DemoConfig

_DEFAULTS = DemoConfig()


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = _DEFAULTS
    p = sub.add_parser("demo", help="the whole pipeline on built-in defaults: simulated demos -> pooled training -> "
                                    "eval -> int8 export -> emulated deployment -> report (resumable)")
    p.add_argument("--robots", nargs="+", default=list(d.robots), metavar="ROBOT",
                   help=f"robots (default: {' '.join(d.robots)})")
    p.add_argument("--task", default=d.task, help=f"the task every robot learns (default {d.task})")
    p.add_argument("--demos", type=int, default=d.demos, help=f"demonstrations per robot (default {d.demos})")
    p.add_argument("--preset", default=d.preset, help=f"policy preset (default {d.preset})")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"training steps (default {d.steps}: at about 4.3 steps/s on 2 idle cores, the whole demo "
                        "takes about 10 minutes; on a loaded machine, less is faster); raising it later resumes the "
                        "run and redoes the later stages")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                   help=f"evaluation episodes per robot (default {d.eval_episodes})")
    p.add_argument("--gate-episodes", type=int, default=d.gate_episodes,
                   help=f"episodes per precision of the int8 simulated-success gate (default {d.gate_episodes})")
    p.add_argument("--deploy-episodes", type=int, default=d.deploy_episodes,
                   help=f"emulated deployment episodes per robot (default {d.deploy_episodes})")
    p.add_argument("--deploy-seconds", type=float, default=d.deploy_seconds,
                   help="longest deployment episode [s] (default: the task's time limit)")
    p.add_argument("--fault-profile", default=d.fault_profile,
                   help=f"faults of the emulated arms: none, flaky, harsh or a .toml (default {d.fault_profile})")
    p.add_argument("--workers", type=int, default=d.workers, help=f"worker processes (default {d.workers})")
    p.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    p.add_argument("--cache", dest="language_cache", metavar="DIR", help="instruction-embedding cache folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars inside stages")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.demo import run_demo, terminal_table

    cfg = DemoConfig(robots=tuple(args.robots), task=args.task, demos=args.demos, preset=args.preset,
                     steps=args.steps, batch_size=args.batch_size, eval_episodes=args.eval_episodes,
                     gate_episodes=args.gate_episodes, deploy_episodes=args.deploy_episodes,
                     fault_profile=args.fault_profile, deploy_seconds=args.deploy_seconds, workers=args.workers,
                     out=args.out, language_cache=args.language_cache, progress=args.progress)
    result = run_demo(cfg)
    print(f"\nembodied demo: {result.wall_s / 60:.1f} min ({result.wall_s:.0f} s)\n")
    print(terminal_table(result.summary))
    print(f"\nreport: {cfg.root / 'report.md'}\nsummary: {cfg.root / 'summary.json'}")
    return 0
