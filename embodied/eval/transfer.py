"""Positive transfer: does one policy pooled over robots beat each robot trained alone?

The protocol: for each seed, one policy trained on every dataset given (pooled) and one per
robot trained on that robot's datasets alone (its specialist), each for the same number of
steps, on the first `demos` episodes of each dataset; then every (robot, task) pair the
datasets hold is evaluated with both, on the same seeded episodes. The gain is the pooled
success rate minus the specialists', over all pairs and seeds (every pair has the same number
of episodes, so this is also the mean of the per-pair differences). Its 95% interval
(Newcombe's hybrid score interval from the two Wilson intervals) counts episodes as the
unit of noise; the per-seed gains, reported beside it, show how much the seeds disagree.

    python -m embodied.eval.transfer --data data/*_lift.zarr data/*_push.zarr --demos 20 \\
        --seeds 0 1 2 --steps 3000 --episodes 50 --out runs/transfer

Each dataset names its task (`sim_task`, recorded by `embodied simgen`). Resumable: trainings
that reached `steps` and evaluations already written in `--out` are not repeated. Writes
`--out/transfer.json` and prints it.

A seed of the twelve-pair protocol takes most of an afternoon on a 2-core machine, so seeds are
often run apart, on other days or machines; their reports add up to the protocol's:

    python -m embodied.eval.transfer --combine seed0/transfer.json seed1/transfer.json --out runs/all
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError, DataError
from embodied.eval.protocol import evaluate_once, train_once
from embodied.eval.stats import SuccessRate, difference_interval

POOLED = "pooled"


@dataclass(frozen=True)
class TransferConfig:
    data: tuple[str, ...]
    out: str
    demos: int | None = 20  # first N episodes of each dataset (None: all)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 3000
    preset: str = "small"
    episodes: int = 50  # evaluation episodes per (robot, task) and policy
    workers: int = 2
    language_cache: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields of every run (batch_size, ...)
    progress: bool = True  # a line on stderr as each run starts and each pair is evaluated


def _say(cfg: TransferConfig, line: str) -> None:
    if cfg.progress:
        print(f"transfer: {line}", file=sys.stderr, flush=True)


def dataset_pairs(data: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """{dataset: (robot, task)}; the task from the store's `sim_task`."""
    from embodied.data.mixture import open_source
    from embodied.data.source import sim_task

    pairs = {}
    for d in data:
        if not Path(d).exists():
            raise DataError(f"dataset {d} does not exist; generate it with `embodied simgen --out {d} ...`")
        source = open_source(d)
        task = sim_task(source)
        if not task:
            raise DataError(f"dataset {d} does not say which simulated task it demonstrates (`embodied simgen` "
                            "records it as the store attribute sim_task since 2026-12); record it with "
                            f"EpisodeStore.open({str(d)!r}, 'r+').set_attr('sim_task', TASK)")
        pairs[d] = (source.robot, task)
    if len(set(pairs.values())) < len(pairs):
        raise ConfigError("two datasets demonstrate the same robot and task; pass one per pair")
    if len({robot for robot, _ in pairs.values()}) < 2:
        raise ConfigError("positive transfer needs datasets of at least two robots")
    return pairs


def _train(cfg: TransferConfig, data: list[str], seed: int, run: Path) -> None:
    from embodied.train import TrainConfig

    train_once(TrainConfig(out=str(run), data=tuple(data), demos=cfg.demos, preset=cfg.preset, steps=cfg.steps,
                           seed=seed, preload=True, language_cache=cfg.language_cache, progress=False,
                           **cfg.train_overrides),
               lambda line: _say(cfg, line), f"training {run} ({cfg.steps} steps, {len(data)} dataset(s))")


def _evaluate(cfg: TransferConfig, run: Path, robot: str, task: str) -> SuccessRate:
    return evaluate_once(run, robot, task, cfg.episodes, cfg.workers, cfg.language_cache, "transfer", cfg.steps)


def _gain(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The pooled runs' success against the specialists' over `rows` (evaluated pairs)."""
    p, s = (SuccessRate.total(SuccessRate(**r[k]) for r in rows) for k in (POOLED, "specialist"))
    return {"pooled": asdict(p) | {"rate": p.rate}, "specialists": asdict(s) | {"rate": s.rate},
            "gain": p.rate - s.rate, "gain_ci95": list(difference_interval(p.successes, p.episodes,
                                                                            s.successes, s.episodes))}


def _report(config: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The protocol's report from its evaluated pairs (one row per seed, robot and task): the gain
    over every row, and over the rows of each seed, robot and task."""
    def over(key: str) -> dict[Any, dict[str, Any]]:
        return {value: _gain([r for r in rows if r[key] == value]) for value in dict.fromkeys(r[key] for r in rows)}

    return {"config": config, "pairs": rows, "per_seed": [{"seed": seed, **gain} for seed, gain in over("seed").items()],
            "per_robot": over("robot"), "per_task": over("task"), **_gain(rows)}


def run_transfer(cfg: TransferConfig) -> dict[str, Any]:
    """Train and evaluate every run of the protocol (or find them done); returns the report."""
    if not cfg.seeds:
        raise ConfigError("give at least one seed")
    pairs = dataset_pairs(cfg.data)
    robots = list(dict.fromkeys(robot for robot, _ in pairs.values()))
    root = Path(cfg.out)
    rows = []
    for seed in cfg.seeds:
        base = root / f"seed{seed}"
        _train(cfg, list(pairs), seed, base / POOLED)
        for robot in robots:
            _train(cfg, [d for d, (r, _) in pairs.items() if r == robot], seed, base / robot)
        for robot, task in pairs.values():
            pooled, alone = _evaluate(cfg, base / POOLED, robot, task), _evaluate(cfg, base / robot, robot, task)
            _say(cfg, f"seed {seed} {robot}/{task}: pooled {pooled.successes}/{pooled.episodes}, "
                      f"specialist {alone.successes}/{alone.episodes}")
            rows.append({"seed": seed, "robot": robot, "task": task, POOLED: asdict(pooled), "specialist": asdict(alone)})
    report = _report(asdict(cfg) | {"data": list(cfg.data), "seeds": list(cfg.seeds)}, rows)
    root.mkdir(parents=True, exist_ok=True)
    (root / "transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# What two reports must share to be one protocol's seeds (where the data and the caches lie may differ).
_RECIPE = ("demos", "steps", "preset", "episodes")
_NOT_RECIPE = ("feature_cache",)


def combine_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report over the seeds of several reports of the same protocol: the same pairs, the
    same recipe (demonstrations, steps, preset, episodes, training overrides), no seed twice."""
    if not reports:
        raise ConfigError("give at least one report to combine")

    def recipe(report: dict[str, Any]) -> tuple[Any, ...]:
        cfg = report["config"]
        overrides = {k: v for k, v in cfg.get("train_overrides", {}).items() if k not in _NOT_RECIPE}
        pairs = sorted({(r["robot"], r["task"]) for r in report["pairs"]})
        return tuple(cfg[k] for k in _RECIPE) + (json.dumps(overrides, sort_keys=True), pairs)

    first = recipe(reports[0])
    for i, report in enumerate(reports[1:], start=1):
        if recipe(report) != first:
            names = _RECIPE + ("train_overrides", "pairs")
            differ = [n for n, a, b in zip(names, first, recipe(report)) if a != b]
            raise ConfigError(f"report {i} is not the same protocol as report 0: its {', '.join(differ)} differ; "
                              "combine only seeds of one recipe over the same pairs")
    seeds = [seed for report in reports for seed in report["config"]["seeds"]]
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"a seed appears in two reports (seeds {seeds}); each seed counts once")
    rows = [row for report in reports for row in report["pairs"]]
    return _report(reports[0]["config"] | {"seeds": seeds}, rows)


def _read_report(path: Path) -> dict[str, Any]:
    how = "`--combine` takes the transfer.json files that `python -m embodied.eval.transfer --out DIR` wrote"
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"transfer report {path} does not exist; {how}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"transfer report {path} is not JSON ({e}); {how}") from None
    if not isinstance(report, dict) or not {"config", "pairs"} <= report.keys():
        raise DataError(f"{path} is not a transfer report (it has no config and pairs); {how}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embodied.eval.transfer", description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", nargs="+", help="one dataset per (robot, task), two robots or more")
    source.add_argument("--combine", nargs="+", metavar="REPORT",
                       help="transfer.json reports of other seeds of one protocol: write their combined report")
    p.add_argument("--demos", type=int, default=20, help="first N episodes of each dataset (default 20)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps of every run, pooled or not")
    p.add_argument("--preset", default="small")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per pair and policy")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", help="instruction-embedding cache folder")
    p.add_argument("--lr", type=float, help="peak learning rate of every run (default: `embodied train`'s)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="overrides",
                   help="override fields of the preset in every run, as `embodied train --set`")
    p.add_argument("--feature-cache", metavar="DIR", help="frozen-backbone feature cache, as `embodied train`'s")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.combine:
        report = combine_reports([_read_report(Path(f)) for f in args.combine])
        report["config"]["out"] = args.out
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    else:
        from embodied.cli.train import parse_overrides

        given = {"lr": args.lr, "feature_cache": args.feature_cache}
        overrides = ({k: v for k, v in given.items() if v is not None}
                     | {"policy_overrides": parse_overrides(args.overrides)})
        report = run_transfer(TransferConfig(tuple(args.data), args.out, args.demos, tuple(args.seeds), args.steps,
                                             args.preset, args.episodes, args.workers, args.cache, overrides))
    print(json.dumps({k: report[k] for k in ("per_seed", POOLED, "specialists", "gain", "gain_ci95")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
