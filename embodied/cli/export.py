"""`embodied export`: a trained policy for one robot -> an ONNX bundle (fp32, optionally int8,
with static calibration on dataset frames and a simulated-success gate)."""

from __future__ import annotations

import argparse
import os


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a policy for one robot to an ONNX bundle (fp32, int8 with gates)")
    p.add_argument("--policy", required=True, help="run folder (runs/X) or checkpoint folder")
    p.add_argument("--robot", required=True)
    p.add_argument("--out", required=True, help="bundle folder, e.g. bundles/so100 (replaced only once complete)")
    p.add_argument("--instructions", nargs="+", default=[], metavar="TEXT",
                   help="instructions the bundle serves (their embeddings are stored; the robot needs no language "
                        "model); with --gate-task, the instructions of the gate's episodes are added")
    p.add_argument("--quantize", choices=["int8"], help="also write an int8 model (recipe chosen by measured error)")
    p.add_argument("--bound", type=float, default=None, help="largest int8 relative error vs fp32 (default 0.05)")
    p.add_argument("--force", action="store_true",
                   help="keep an int8 model past the bound or the sim gate (recorded in the manifest)")
    p.add_argument("--heldout", type=int, default=16, help="synthetic held-out inputs for the int8 error (default 16)")
    p.add_argument("--threads", type=int, default=1, help="threads of the latency measurement (default 1)")
    p.add_argument("--cache", help="instruction-embedding cache folder")
    cal = p.add_argument_group("static int8 calibration")
    cal.add_argument("--calibration-data", metavar="DIR",
                     help="the robot's dataset (EpisodeStore or LeRobot folder): static int8 recipes are calibrated "
                          "on its frames and every recipe is measured on further held-out frames")
    cal.add_argument("--calibration-frames", type=int, default=64, help="frames to calibrate on (default 64)")
    cal.add_argument("--calibration-heldout", type=int, default=16, help="frames to measure on (default 16)")
    sim = p.add_argument_group("simulated-success gate (int8 at most 3 points below fp32)")
    sim.add_argument("--gate-task", metavar="TASK", help="run fp32 and int8 through seeded episodes of this task")
    sim.add_argument("--gate-episodes", type=int, default=50, help="episodes per precision (default 50)")
    sim.add_argument("--gate-seeds-start", type=int, default=None, help="first episode seed (default 100000)")
    sim.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rollout processes of the gate")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace):
    from embodied.eval.evaluate import DEFAULT_SEED0
    from embodied.export_gate import SimGate
    from embodied.export_int8 import Calibration

    calibration = gate = None
    if args.calibration_data:
        calibration = Calibration(args.calibration_data, args.calibration_frames, args.calibration_heldout)
    if args.gate_task:
        seed0 = DEFAULT_SEED0 if args.gate_seeds_start is None else args.gate_seeds_start
        gate = SimGate(args.gate_task, args.gate_episodes, seed0, args.workers)
    return calibration, gate


def _print(manifest: dict) -> None:
    models, lat, gate = manifest["models"], manifest["latency_ms"], manifest["gate"]
    print(f"fp32: {models['fp32']['bytes'] / 1e6:.2f} MB, {lat['fp32']['p50']:.2f} ms p50, "
          f"{models['fp32']['vs_torch_relative_error']:.1e} relative error vs torch")
    if "int8" not in models:
        return
    i8 = models["int8"]
    for c in i8["candidates"]:
        print(f"  int8 candidate {c['recipe']:28s} {c['mode']:7s} error {c['relative_error']:.4f}, "
              f"{c['latency_p50_ms']:.2f} ms p50{'  <- chosen' if c['chosen'] else ''}")
    note = " (FORCED past the bound)" if gate["forced"] else ""
    print(f"int8 ({i8['recipe']['name']}): {i8['bytes'] / 1e6:.2f} MB ({i8['size_ratio']:.1f}x smaller), "
          f"{lat['int8']['p50']:.2f} ms p50, {i8['relative_error']:.3f} relative error vs fp32 "
          f"(bound {gate['bound']}){note}")
    sim = gate["sim_gate"]
    if isinstance(sim, dict):
        print(f"simulated-success gate, {sim['task']} x {sim['episodes']} seeds: fp32 "
              f"{100 * sim['fp32']['success_rate']:.1f}%, int8 {100 * sim['int8']['success_rate']:.1f}% "
              f"(drop {sim['drop_points']:.1f} points, bar {sim['max_drop_points']:g})"
              + (" FORCED past the bar" if sim["forced"] else ": passed"))
    else:
        print(f"simulated-success gate: {sim} (--gate-task TASK runs it)")


def run(args: argparse.Namespace) -> int:
    from embodied.export import DEFAULT_BOUND, export_bundle
    from embodied.policy.encoders import LanguageEncoder

    calibration, gate = _options(args)
    manifest = export_bundle(args.policy, args.robot, args.out, args.instructions,
                             quantize_int8=args.quantize == "int8",
                             bound=DEFAULT_BOUND if args.bound is None else args.bound, force=args.force,
                             heldout=args.heldout, threads=args.threads, language=LanguageEncoder(args.cache),
                             calibration=calibration, gate=gate)
    _print(manifest)
    print(f"saved {args.out}")
    return 0
