"""`embodied export`: a trained policy for one robot -> an ONNX bundle (fp32, optionally int8)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a policy for one robot to an ONNX bundle (fp32, int8 with a gate)")
    p.add_argument("--policy", required=True, help="run folder (runs/X) or checkpoint folder")
    p.add_argument("--robot", required=True)
    p.add_argument("--out", required=True, help="bundle folder, e.g. bundles/so100")
    p.add_argument("--instructions", nargs="+", required=True, metavar="TEXT",
                   help="instructions the bundle serves (their embeddings are stored; the robot needs no language model)")
    p.add_argument("--quantize", choices=["int8"], help="also write an int8 model (recipe chosen by measured error)")
    p.add_argument("--bound", type=float, default=None, help="largest int8 relative error vs fp32 (default 0.05)")
    p.add_argument("--force", action="store_true", help="keep an int8 model past the bound (recorded in the manifest)")
    p.add_argument("--heldout", type=int, default=16, help="held-out inputs for the int8 error (default 16)")
    p.add_argument("--threads", type=int, default=1, help="threads of the latency measurement (default 1)")
    p.add_argument("--cache", help="instruction-embedding cache folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.export import DEFAULT_BOUND, export_bundle
    from embodied.policy.encoders import LanguageEncoder

    manifest = export_bundle(args.policy, args.robot, args.out, args.instructions, quantize_int8=args.quantize == "int8",
                             bound=DEFAULT_BOUND if args.bound is None else args.bound, force=args.force,
                             heldout=args.heldout, threads=args.threads, language=LanguageEncoder(args.cache))
    models, lat = manifest["models"], manifest["latency_ms"]
    print(f"fp32: {models['fp32']['bytes'] / 1e6:.2f} MB, {lat['fp32']['p50']:.2f} ms p50, "
          f"{models['fp32']['vs_torch_relative_error']:.1e} relative error vs torch")
    if "int8" in models:
        i8 = models["int8"]
        note = " (FORCED past the bound)" if manifest["gate"]["forced"] else ""
        print(f"int8 ({i8['recipe']['name']}): {i8['bytes'] / 1e6:.2f} MB ({i8['size_ratio']:.1f}x smaller), "
              f"{lat['int8']['p50']:.2f} ms p50, {i8['relative_error']:.3f} relative error vs fp32 "
              f"(bound {manifest['gate']['bound']}){note}; simulated-success gate: {manifest['gate']['sim_gate']}")
    print(f"saved {args.out}")
    return 0
