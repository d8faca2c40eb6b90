"""`embodied train`: pooled training over many robots (also under `torchrun --nproc_per_node N`)."""

from __future__ import annotations

import argparse
import json
import logging
import os


def add_training_options(p: argparse.ArgumentParser, steps: int, lr: float) -> None:
    """Options shared by `train` and `finetune`."""
    p.add_argument("--steps", type=int, default=steps, help=f"total optimizer steps (default {steps})")
    p.add_argument("--batch-size", type=int, default=32, help="samples per batch, per process (default 32)")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps (default 100)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader workers per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY", help="checkpoints hold an exponential "
                   "moving average of the weights with this decay, e.g. 0.999 (default 0: the raw weights)")
    p.add_argument("--ckpt-every", type=int, default=250, help="save a checkpoint every N steps")
    p.add_argument("--demos", type=int, metavar="N", help="train on the first N episodes of each --data dataset "
                   "(data-scaling curves from one dataset; default: all)")
    p.add_argument("--no-augment", action="store_true", help="no image shift / colour jitter")
    p.add_argument("--state-noise", type=float, default=0.0, metavar="STD", help="Gaussian noise on the normalized "
                   "proprioception of training samples (default 0: none)")
    p.add_argument("--preload", action="store_true", help="decode every image into memory once and sample frames "
                   "independently (faster, better mixed batches; needs the decoded dataset to fit in RAM)")
    p.add_argument("--max-bad-batches", type=int, default=5, help="stop after this many NaN batches in a row")
    p.add_argument("--cache", help="instruction-embedding cache folder (default $EMBODIED_CACHE/language "
                                   "or ~/.cache/embodied/language)")
    p.add_argument("--feature-cache", metavar="DIR", help="folder of cached frozen-backbone features of training "
                   "frames (default $EMBODIED_CACHE/features or ~/.cache/embodied/features)")
    p.add_argument("--no-progress", action="store_true")


def parse_overrides(items: list[str]) -> dict[str, object]:
    """["film_queries=0", "image_channels=[16,32]"] -> {"film_queries": 0, "image_channels": [16, 32]}:
    values are JSON where they parse as JSON, else strings (head=flow)."""
    from embodied.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes FIELD=VALUE, found {item!r}; e.g. --set film_queries=0")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the VLA policy on pooled datasets (resumable; torchrun for many processes)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", metavar="DIR", help="dataset folders (episode stores or LeRobot)")
    src.add_argument("--recipe", help="mixture recipe, e.g. datasets/NAME.toml")
    p.add_argument("--grounding-data", nargs="+", default=[], metavar="DIR",
                   help="with --data: datasets whose frames train only the grounding loss (their actions are not "
                        "imitated); needs a policy with grounding_weight > 0 (small and base have it)")
    p.add_argument("--preset", default="small", help="policy preset: tiny, small (default), small_pretrained "
                   "(small over a frozen ImageNet backbone), base")
    p.add_argument("--head", choices=["l1", "flow"], help="action head (default: the preset's)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="overrides",
                   help="override fields of the preset, e.g. --set film_queries=0 chunk=8 (values as JSON)")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/X (resumed when it holds a checkpoint)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None, help="require a checkpoint to resume")
    resume.add_argument("--no-resume", dest="resume", action="store_false", help="refuse a run folder with a checkpoint")
    add_training_options(p, steps=2000, lr=1e-3)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from embodied.train import TrainConfig, train

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    cfg = TrainConfig(out=args.out, data=tuple(args.data or ()), recipe=args.recipe,
                      grounding_data=tuple(args.grounding_data), demos=args.demos, preset=args.preset, head=args.head,
                      policy_overrides=parse_overrides(args.overrides),
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, ema=args.ema, workers=args.workers,
                      seed=args.seed, ckpt_every=args.ckpt_every, resume=args.resume, augment=not args.no_augment,
                      state_noise=args.state_noise, preload=args.preload,
                      max_bad_batches=args.max_bad_batches, language_cache=args.cache, feature_cache=args.feature_cache,
                      progress=not args.no_progress)
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
        print(f"checkpoint: {args.out}/last (best: {args.out}/best); curves: {args.out}/loss.csv, {args.out}/loss.png")
    return 0
