"""`embodied eval`: seeded rollouts of a trained policy (torch checkpoint, or export bundle run
by the torch-free ONNX Runtime engine; with --emulate, the bundle through the deploy path);
success rate with a 95% interval, and how often the policy manipulated the named object."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from embodied.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained policy in simulation (seeded, parallel; JSON out)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="run folder (runs/X) or checkpoint folder (torch)")
    which.add_argument("--bundle", help="export bundle folder (bundles/R), run with ONNX Runtime, 1 thread per worker")
    p.add_argument("--precision", choices=["auto", "int8", "fp32"], default="auto",
                   help="bundle model to run (default auto: int8 when the bundle has it)")
    p.add_argument("--robot", nargs="+", metavar="R", help="the robot (with --suite: only these robots' pairs)")
    p.add_argument("--task", nargs="+", metavar="T", help="the task (with --suite: only these tasks' pairs)")
    p.add_argument("--suite", action="store_true",
                   help="every robot x task the run (--policy) was trained on, summed in one table "
                        "(RUN/eval/suite_*.json); pair reports already written for the same weights are reused")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--video", metavar="DIR", help="write mp4s of the first episodes here")
    p.add_argument("--videos", type=int, default=2, help="how many episodes get a video (default 2)")
    p.add_argument("--instructions", nargs="+", choices=["train", "heldout"], default=["train"],
                   help="instruction phrasings (default train; with --suite, both: `train heldout` adds the "
                        "held-out drop)")
    p.add_argument("--seed0", type=int, help="first episode seed (default 100000, away from demo seeds)")
    p.add_argument("--execute", type=int, default=0, help="actions run open loop per chunk (default 0: whole chunk)")
    p.add_argument("--ensemble", action="store_true", help="query every step and temporally ensemble the chunks")
    p.add_argument("--cache", help="instruction-embedding cache folder")
    p.add_argument("--camera-jitter", type=float, default=0.0, metavar="J",
                   help="in [0, 1]: move each episode's scene cameras away from the robot's poses (as "
                        "`embodied simgen --camera-jitter`; default 0): what a bumped camera costs")
    emu = p.add_argument_group("deploy path (with --bundle)")
    emu.add_argument("--emulate", action="store_true",
                     help="run the episodes through the deploy loop: emulated servo chain on a pty with the scene as "
                          "plant, rendered cameras, asynchronous chunking, fault monitor (one episode at a time, "
                          "in real time)")
    emu.add_argument("--fault-profile", metavar="NAME|PATH",
                     help="faults of the emulated chain: none, flaky, harsh, or a .toml file (default none)")
    emu.add_argument("--seconds", type=float, help="longest emulated episode [s] (default: the task's time limit)")
    p.add_argument("--out", help="JSON file (default: POLICY_RUN/eval/ROBOT_TASK_INSTRUCTIONS[_camjitterJ].json, "
                                 "out/eval/BUNDLE_PRECISION_TASK_INSTRUCTIONS.json for a bundle)")
    p.set_defaults(run=run)


def _default_out(args: argparse.Namespace, report: dict) -> Path:
    from embodied.eval.evaluate import jitter_suffix, report_path

    if args.bundle:
        name = Path(report["policy"]).name
        emulated = f"_emulated-{report['emulated']['fault_profile']}" if args.emulate else ""
        return Path("out/eval") / (f"{name}_{report['precision']}_{args.task}_{args.instructions}{emulated}"
                                   f"{jitter_suffix(args.camera_jitter)}.json")
    return report_path(Path(report["policy"]), args.robot, args.task, args.instructions, args.camera_jitter)


def _suite(args: argparse.Namespace, seed0: int) -> int:
    from embodied.eval.suite import SuiteConfig, format_summary, run_suite

    other = [flag for flag, given in (("--bundle", args.bundle), ("--video", args.video), ("--execute", args.execute),
                                      ("--ensemble", args.ensemble), ("--camera-jitter", args.camera_jitter),
                                      ("--emulate", args.emulate), ("--out", args.out)) if given]
    if other:
        raise ConfigError(f"--suite evaluates a run (--policy) on its pairs' default episodes, whole chunks, into "
                          f"RUN/eval; drop {', '.join(other)} or evaluate one pair without --suite")
    summary = run_suite(SuiteConfig(args.policy, tuple(args.instructions), tuple(args.robot or ()),
                                    tuple(args.task or ()), args.episodes, args.workers, seed0, args.cache))
    print(format_summary(summary))
    print(f"saved {summary['out']}")
    return 0


def run(args: argparse.Namespace) -> int:
    from embodied.eval import EvalConfig, Execution, evaluate
    from embodied.eval.evaluate import DEFAULT_SEED0
    from embodied.eval.stats import describe_target_color

    seed0 = DEFAULT_SEED0 if args.seed0 is None else args.seed0
    if args.suite:
        return _suite(args, seed0)
    for flag, values in (("--robot", args.robot), ("--task", args.task), ("--instructions", args.instructions)):
        if not values or len(values) != 1:
            raise ConfigError(f"{flag}: give exactly one (several only with --suite)")
    args.robot, args.task, args.instructions = args.robot[0], args.task[0], args.instructions[0]
    execution = Execution("ensemble" if args.ensemble else "open_loop", args.execute)
    cfg = EvalConfig(args.bundle or args.policy, args.robot, args.task, args.episodes, args.workers, args.instructions,
                     seed0, args.video, args.videos, execution, args.cache, bundle=args.bundle is not None,
                     precision=args.precision, emulate=args.emulate, fault_profile=args.fault_profile,
                     seconds=args.seconds, camera_jitter=args.camera_jitter)
    report = evaluate(cfg)
    out = Path(args.out) if args.out else _default_out(args, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lo, hi = report["ci95"]
    runtime = f"{report['runtime']} {report['precision']}" + (", emulated deploy path" if args.emulate else "")
    moved = f", scene cameras jittered {args.camera_jitter:g}" if args.camera_jitter else ""
    print(f"{args.robot}/{args.task} ({args.instructions} instructions{moved}, {runtime}): success "
          f"{100 * report['success_rate']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
          f"({report['successes']}/{report['episodes']}), {report['infer_ms_mean']:.1f} ms per chunk, "
          f"{report['wall_s']:.0f} s on {report['workers']} worker(s)")
    print(_grounding_line(report["named_object_rate"]))
    color = describe_target_color(report["by_target_color"])
    if color:
        print(color)
    if args.emulate:
        print(_emulated_line(report["emulated"]))
    if report["videos"]:
        print("videos: " + ", ".join(report["videos"]))
    print(f"saved {out}")
    return 0


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _grounding_line(g: dict) -> str:
    lo, hi = g["ci95"]
    return (f"named object manipulated: {_percent(g['of_manipulated'])} [{100 * lo:.1f}, {100 * hi:.1f}] of the "
            f"{g['manipulated']} episode(s) that moved an object ({g['named']}/{g['manipulated']}), "
            f"{_percent(g['of_all'])} of all {g['episodes']}")


def _audit_words(audit: dict) -> str:
    missed = {k: v["injected"] - v["detected"] for k, v in audit["by_kind"].items() if v["detected"] < v["injected"]}
    words = "MISSING from the black box: " + ", ".join(f"{n} {kind}" for kind, n in missed.items()) if missed \
        else "every injected fault in the black box"
    unmonitored = audit["unmonitored"]
    return words + (f"; outside the monitored spans: {unmonitored}" if unmonitored else "")


def _emulated_line(e: dict) -> str:
    period = e["period_error_ms"]
    return (f"deploy path ({e['fault_profile']} servos): faults {e['faults'] or 'none'}; injected "
            f"{e['injected'] or 'none'} ({_audit_words(e['fault_audit'])}); limit violations "
            f"{e['limit_violations']}; period error p99 {period.get('p99', '-')} ms; black box {e['blackbox']}")
