"""A new arm from few demonstrations: adapter-only finetuning of a base that never saw the arm,
against training from scratch, along a curve of demonstration counts, and against a reference
trained from scratch on many.

The issue's measure: hold one robot out of pretraining; at 20 demonstrations the adapter should
reach 80% of the success of a policy trained on 200 of that robot, with the curve at 5 / 10 /
20 / 50 demonstrations against training from scratch:

    python -m embodied.eval.new_arm --base runs/pooled_without_ur5e --robot ur5e --task lift \\
        --data datasets/ur5e_lift_200.zarr --demos 5 10 20 50 --reference-demos 200 \\
        --steps 3000 --reference-steps 6000 --episodes 50 --out runs/new_arm

Every count N trains on the first N episodes of `--data` (so the curve's runs see nested
demonstrations), once per seed: `adapter_N_seedS/` finetunes the arm's adapter on its own copy of
the base checkpoint (an adapter is saved next to its base, so each needs one), `scratch_N_seedS/`
trains every weight from scratch with the same steps; `reference/` trains from scratch on
`--reference-demos` with `--reference-steps`. Each kind of run has its own command's learning
rate: `--lr` the runs from scratch (`embodied train`'s 1e-3), `--adapter-lr` the adapters
(`embodied finetune`'s 3e-4); `--trunk-rank` is the rank of the adapters' own low-rank update
of the trunk (`embodied finetune`'s 16). Every run is evaluated on the same seeded
episodes. Resumable: finished runs and their evaluations are kept (an adapter finetuned at
another learning rate or trunk rank is finetuned again). Writes `--out/new_arm.json` (each
rate with its 95% interval, summed over seeds, and the adapter's share of the reference's
success at each count) after every count, the counts in increasing order, and prints it at
the end. The counts run in the order given: `--demos 20 5 10 50` measures the issue's point
first.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError
from embodied.eval.protocol import evaluate_once, train_once
from embodied.eval.stats import SuccessRate
from embodied.train.config import FINETUNE_LR, FINETUNE_TRUNK_RANK

FINETUNED = "finetune.json"  # an adapter run's summary, written when its finetune finished


@dataclass(frozen=True)
class NewArmConfig:
    base: str  # run or checkpoint folder of a policy trained without `robot`
    robot: str
    task: str
    data: tuple[str, ...]  # the new arm's datasets; each count N uses the first N episodes of each
    out: str
    demos: tuple[int, ...] = (5, 10, 20, 50)
    reference_demos: int = 200
    seeds: tuple[int, ...] = (0,)  # of the adapter and scratch runs; the reference is trained once
    steps: int = 3000  # of every adapter and scratch run
    adapter_lr: float = FINETUNE_LR  # peak learning rate of the adapter finetunes (`embodied finetune`'s)
    trunk_rank: int = FINETUNE_TRUNK_RANK  # of the adapters' own low-rank trunk updates (0: none)
    reference_steps: int = 6000
    preset: str | None = None  # of the scratch and reference runs (None: the base's)
    episodes: int = 50  # evaluation episodes of every run
    workers: int = 2
    language_cache: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields of every run
    progress: bool = True


def _say(cfg: NewArmConfig, line: str) -> None:
    if cfg.progress:
        print(f"new arm: {line}", file=sys.stderr, flush=True)


def _base_checkpoint(cfg: NewArmConfig) -> tuple[Path, str]:
    """The base's checkpoint and the preset of the runs from scratch; refuses a base that knows the arm."""
    from embodied.train.rundir import CONFIG, MANIFEST, resolve_policy

    ckpt = resolve_policy(cfg.base)
    known = json.loads((ckpt / MANIFEST).read_text())["robots"]
    if cfg.robot in known:
        raise ConfigError(f"the base {ckpt} was trained on {cfg.robot} (it knows {sorted(known)}); a new arm is "
                          f"measured on a base that held it out: train one without {cfg.robot}'s datasets")
    if cfg.preset is not None:
        return ckpt, cfg.preset
    run_config = ckpt.parent / CONFIG
    if not run_config.is_file():
        raise ConfigError(f"{ckpt} has no {CONFIG} beside it to say its preset; give the preset of the runs "
                          "from scratch (--preset)")
    return ckpt, json.loads(run_config.read_text())["preset"]


def _train_config(cfg: NewArmConfig, out: Path, demos: int, steps: int, seed: int, preset: str):
    from embodied.train import TrainConfig

    return TrainConfig(out=str(out), data=cfg.data, demos=demos, preset=preset, steps=steps, seed=seed, preload=True,
                       language_cache=cfg.language_cache, progress=False, **cfg.train_overrides)


def _from_scratch(cfg: NewArmConfig, run: Path, demos: int, steps: int, seed: int, preset: str) -> Path:
    return train_once(_train_config(cfg, run, demos, steps, seed, preset), lambda line: _say(cfg, line),
                      f"training {run} from scratch ({demos} demonstrations, {steps} steps)")


def _adapter(cfg: NewArmConfig, run: Path, base: Path, demos: int, seed: int, preset: str) -> Path:
    """The arm's adapter finetuned on a copy of the base kept in `run/base`; returns that checkpoint."""
    from embodied.policy.checkpoint import ADAPTERS
    from embodied.train import finetune
    from embodied.train.rundir import STATE

    train_cfg = replace(_train_config(cfg, run, demos, cfg.steps, seed, preset), lr=cfg.adapter_lr)
    ckpt, done = run / "base", run / FINETUNED
    finished = json.loads(done.read_text()) if done.is_file() else {}
    how = f"{cfg.steps} steps at a learning rate of {train_cfg.lr:g}, trunk rank {cfg.trunk_rank}"
    if (finished.get("steps"), finished.get("lr"), finished.get("trunk_rank", 0)) == (cfg.steps, train_cfg.lr,
                                                                                      cfg.trunk_rank):
        _say(cfg, f"{run} already finetuned for {how}")
        return ckpt
    _say(cfg, f"finetuning {run} ({demos} demonstrations, {how})")
    shutil.rmtree(run, ignore_errors=True)  # a finetune does not resume: start it again from the base
    shutil.copytree(base, ckpt, ignore=shutil.ignore_patterns(ADAPTERS, STATE, "eval"))
    summary = finetune(ckpt, cfg.robot, train_cfg, trunk_rank=cfg.trunk_rank)
    done.write_text(json.dumps(summary | {"lr": train_cfg.lr}, indent=2) + "\n")
    return ckpt


def _evaluate(cfg: NewArmConfig, policy: Path, trained: int) -> SuccessRate:
    return evaluate_once(policy, cfg.robot, cfg.task, cfg.episodes, cfg.workers, cfg.language_cache, "new_arm", trained)


def _rate(rates: list[SuccessRate]) -> dict[str, Any]:
    total = SuccessRate.total(rates)
    return asdict(total) | {"rate": total.rate, "ci95": list(total.interval), "per_seed": [r.successes for r in rates]}


def run_new_arm(cfg: NewArmConfig) -> dict[str, Any]:
    """Train and evaluate every run (or find them done); returns the report."""
    from embodied.train.data import check_sources, open_sources

    if not cfg.seeds or not cfg.demos:
        raise ConfigError("give at least one demonstration count and one seed")
    base, preset = _base_checkpoint(cfg)
    check_sources(open_sources(cfg.data, demos=max(*cfg.demos, cfg.reference_demos)).sources, only_robot=cfg.robot)
    root = Path(cfg.out)
    reference = _from_scratch(cfg, root / "reference", cfg.reference_demos, cfg.reference_steps, cfg.seeds[0], preset)
    ref = _evaluate(cfg, reference, cfg.reference_steps)
    _say(cfg, f"reference ({cfg.reference_demos} demonstrations): {ref.successes}/{ref.episodes}")
    curve = []
    for n in cfg.demos:
        adapted, scratch = [], []
        for seed in cfg.seeds:
            adapted.append(_evaluate(cfg, _adapter(cfg, root / f"adapter_{n}_seed{seed}", base, n, seed, preset),
                                     cfg.steps))
            scratch.append(_evaluate(cfg, _from_scratch(cfg, root / f"scratch_{n}_seed{seed}", n, cfg.steps, seed,
                                                        preset), cfg.steps))
            _say(cfg, f"{n} demonstrations, seed {seed}: adapter {adapted[-1].successes}/{adapted[-1].episodes}, "
                      f"from scratch {scratch[-1].successes}/{scratch[-1].episodes}")
        row = {"demos": n, "adapter": _rate(adapted), "scratch": _rate(scratch)}
        row["adapter_share_of_reference"] = row["adapter"]["rate"] / ref.rate if ref.successes else None
        curve.append(row)
        report = _write_report(cfg, base, preset, ref, curve)
    return report


def _write_report(cfg: NewArmConfig, base: Path, preset: str, ref: SuccessRate, curve: list[dict]) -> dict[str, Any]:
    """`--out/new_arm.json` as far as the protocol got: written after every count, so a protocol stopped
    midway (the whole curve is hours on a CPU) leaves the counts it measured, in increasing order."""
    report = {"config": asdict(cfg) | {"data": list(cfg.data), "demos": list(cfg.demos), "seeds": list(cfg.seeds),
                                       "preset": preset},
              "complete": len(curve) == len(cfg.demos), "base": str(base),
              "reference": {"demos": cfg.reference_demos, **_rate([ref])},
              "curve": sorted(curve, key=lambda row: row["demos"])}
    (Path(cfg.out) / "new_arm.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embodied.eval.new_arm", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="run or checkpoint folder of a policy trained without --robot")
    p.add_argument("--robot", required=True, help="the new arm")
    p.add_argument("--task", required=True, help="the simulated task its episodes are evaluated on")
    p.add_argument("--data", nargs="+", required=True, help="the new arm's datasets")
    p.add_argument("--demos", nargs="+", type=int, default=[5, 10, 20, 50], help="the curve's demonstration counts")
    p.add_argument("--reference-demos", type=int, default=200)
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="of the adapter and scratch runs")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps of every adapter and scratch run")
    p.add_argument("--reference-steps", type=int, default=6000)
    p.add_argument("--preset", help="of the runs from scratch (default: the base's)")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes of every run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", help="instruction-embedding cache folder")
    p.add_argument("--lr", type=float, help="peak learning rate of the runs from scratch (default: `embodied train`'s)")
    p.add_argument("--adapter-lr", type=float, default=FINETUNE_LR,
                   help=f"peak learning rate of the adapter finetunes (default: `embodied finetune`'s, {FINETUNE_LR:g})")
    p.add_argument("--trunk-rank", type=int, default=FINETUNE_TRUNK_RANK, metavar="R",
                   help="rank of the adapters' own trunk updates, as `embodied finetune --trunk-rank` "
                        f"(default {FINETUNE_TRUNK_RANK}; 0: none)")
    p.add_argument("--feature-cache", metavar="DIR", help="frozen-backbone feature cache, as `embodied train`'s")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    given = {"lr": args.lr, "feature_cache": args.feature_cache}
    report = run_new_arm(NewArmConfig(
        args.base, args.robot, args.task, tuple(args.data), args.out, demos=tuple(args.demos),
        reference_demos=args.reference_demos, seeds=tuple(args.seeds), steps=args.steps, adapter_lr=args.adapter_lr,
        trunk_rank=args.trunk_rank, reference_steps=args.reference_steps, preset=args.preset, episodes=args.episodes,
        workers=args.workers, language_cache=args.cache,
        train_overrides={k: v for k, v in given.items() if v is not None}))
    print(json.dumps({"reference": report["reference"], "curve": report["curve"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
