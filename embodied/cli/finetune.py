"""`embodied finetune`: a new arm gets a new adapter; the trained policy stays frozen."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from embodied.cli.train import add_training_options
from embodied.train.config import FINETUNE_LR, FINETUNE_TRUNK_RANK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="adapter-only finetuning of a trained policy to a new robot")
    p.add_argument("--policy", required=True, help="run folder (runs/X) or checkpoint folder")
    p.add_argument("--robot", required=True, help="the robot to adapt to")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="that robot's datasets")
    p.add_argument("--adapter-only", action="store_true", help="train only the robot's adapter (required)")
    p.add_argument("--image-layers", action=argparse.BooleanOptionalAction, default=True,
                   help="the adapter also gets its own copy of the image encoder's conv, norm and keypoint layers, "
                        "started from the shared ones (default; --no-image-layers: the shared layers read its "
                        "cameras, frozen)")
    p.add_argument("--trunk-rank", type=int, default=FINETUNE_TRUNK_RANK, metavar="R",
                   help="the adapter also gets its own rank-R update of the shared trunk's weight matrices, "
                        "saved in the adapter file and merged into the robot's exported graph "
                        f"(default {FINETUNE_TRUNK_RANK}; 0: none, the shared trunk reads its tokens)")
    p.add_argument("--out", help="folder of the loss curves (default: RUN/finetune_ROBOT)")
    add_training_options(p, steps=500, lr=FINETUNE_LR)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.errors import ConfigError
    from embodied.train import TrainConfig, finetune
    from embodied.train.rundir import resolve_policy

    if not args.adapter_only:
        raise ConfigError("only adapter-only finetuning is implemented: pass --adapter-only "
                          "(or train every weight with `embodied train`)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    base = resolve_policy(args.policy)
    out = args.out or str((base.parent if base.name == "last" else base) / f"finetune_{args.robot}")
    cfg = TrainConfig(out=out, data=tuple(args.data), demos=args.demos, steps=args.steps, batch_size=args.batch_size,
                      lr=args.lr, warmup=args.warmup, ema=args.ema, workers=args.workers, seed=args.seed, ckpt_every=args.ckpt_every,
                      augment=not args.no_augment, state_noise=args.state_noise, preload=args.preload, max_bad_batches=args.max_bad_batches,
                      language_cache=args.cache, feature_cache=args.feature_cache,
                      progress=not args.no_progress)
    summary = finetune(base, args.robot, cfg, args.image_layers, args.trunk_rank)
    print(json.dumps(summary, indent=2))
    print(f"adapter: {summary['adapter']} ({summary['adapter_bytes'] / 1024:.0f} KiB, base "
          f"{summary['base_bytes'] / 1024:.0f} KiB); curves: {Path(out) / 'loss.png'}")
    return 0
