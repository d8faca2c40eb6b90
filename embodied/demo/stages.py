"""Stages 1-3 of `embodied demo`: simulated demonstrations, pooled training, evaluation.

Each stage function does its work for one robot (or, for training, all of them) and returns
a result dataclass; `skipped` says the work was found done and reused. Stages 4-5 (export,
emulated deployment) are in `embodied.demo.ship`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from embodied.demo.config import DEMO_SEED0, DemoConfig
from embodied.demo.records import fields, read_record, write_record


@dataclass
class DataResult:
    """One robot's demonstrations.

    Attributes:
        episodes: successful demonstrations in the store.
        seeds_tried: expert seeds rolled out to get them (failed ones are dropped).
        expert_success_rate: episodes / seeds_tried.
        generated: episodes added by this run (0 when the store was already full).
        seconds: wall time of this run's work [s].
    """

    robot: str
    path: str
    episodes: int
    seeds_tried: int
    expert_success_rate: float
    generated: int
    seconds: float
    skipped: bool


def collect(cfg: DemoConfig, robot: str) -> DataResult:
    """Fill the robot's store up to `cfg.demos` scripted-expert demonstrations (resumable)."""
    from embodied.collect.simgen import SimgenConfig, generate
    from embodied.data.store import EpisodeStore

    t0, path = time.perf_counter(), cfg.store(robot)
    have = EpisodeStore.open(path).num_episodes if path.exists() else 0
    generated = 0
    if have < cfg.demos:
        summary = generate(SimgenConfig(robot, cfg.task, cfg.demos, path, cfg.workers, first_seed=DEMO_SEED0),
                           progress=cfg.progress)
        generated = summary["kept"]
    store = EpisodeStore.open(path)
    tried = max(store.seeds()) - DEMO_SEED0 + 1  # simgen tries seeds in order and keeps the successes
    return DataResult(robot, str(path), store.num_episodes, tried, store.num_episodes / tried, generated,
                      round(time.perf_counter() - t0, 1), skipped=generated == 0)


@dataclass
class TrainResult:
    """The pooled run.

    Attributes:
        steps: optimizer steps of the run; loss_ema: its final smoothed loss.
        seconds: training time of the run over all its sessions [s]; steps_per_s: steps / seconds.
        policy_id: sha256 of the last checkpoint's weights (later stages are keyed on it).
        loss_png: the loss curve.
    """

    path: str
    preset: str
    steps: int
    batch_size: int
    frames: int
    loss_ema: float | None
    seconds: float
    steps_per_s: float
    policy_id: str
    loss_png: str
    skipped: bool


def _policy_id(run: Path) -> str | None:
    from embodied.train.rundir import checkpoint_dir

    ckpt = checkpoint_dir(run)
    return None if ckpt is None else json.loads((ckpt / "manifest.json").read_text())["weights_sha256"]


def train_pooled(cfg: DemoConfig, data: Sequence[DataResult]) -> TrainResult:
    """Train (or resume) the `cfg.preset` policy on every robot's store, frames preloaded."""
    from embodied.train import TrainConfig, train

    key = {"data": [d.path for d in data], "episodes": [d.episodes for d in data], "preset": cfg.preset,
           "batch_size": cfg.batch_size}
    found = read_record(cfg.train_record, key)
    if found is not None and found["steps"] >= cfg.steps and found["policy_id"] == _policy_id(cfg.run):
        return TrainResult(**(found | {"skipped": True}))
    summary = train(TrainConfig(out=str(cfg.run), data=tuple(d.path for d in data), preset=cfg.preset,
                                steps=cfg.steps, batch_size=cfg.batch_size, workers=cfg.workers, preload=True,
                                language_cache=cfg.language_cache, progress=cfg.progress,
                                extra={"by": "embodied demo"}))
    seconds = float(summary["seconds"])
    result = TrainResult(str(cfg.run), cfg.preset, summary["steps"], cfg.batch_size, summary["frames"],
                         summary["loss_ema"], seconds, round(summary["steps"] / max(seconds, 1e-9), 2),
                         _policy_id(cfg.run) or "", str(cfg.run / "loss.png"), skipped=False)
    write_record(cfg.train_record, key, fields(result), summary)
    return result


@dataclass
class EvalResult:
    """The trained policy on one robot: `successes` of `episodes` seeded episodes, 95% Wilson
    interval `ci95`; `video`: the first episode (None when not written)."""

    robot: str
    task: str
    episodes: int
    successes: int
    success_rate: float
    ci95: list[float]
    seed0: int
    video: str | None
    wall_s: float
    skipped: bool


def evaluate_robot(cfg: DemoConfig, robot: str, trained: TrainResult) -> EvalResult:
    """`cfg.eval_episodes` seeded episodes of the torch checkpoint (seeds away from the demos')."""
    from embodied.eval import EvalConfig, evaluate

    key = {"policy": trained.policy_id, "task": cfg.task, "episodes": cfg.eval_episodes}
    found = read_record(cfg.eval_record(robot), key)
    if found is not None and (found["video"] is None or Path(found["video"]).exists()):
        return EvalResult(**(found | {"skipped": True}))
    report = evaluate(EvalConfig(str(cfg.run), robot, cfg.task, cfg.eval_episodes, cfg.workers,
                                 video_dir=str(cfg.video_dir), videos=1, language_cache=cfg.language_cache,
                                 progress=cfg.progress))
    videos = report["videos"]
    result = EvalResult(robot, cfg.task, report["episodes"], report["successes"], report["success_rate"],
                        list(report["ci95"]), report["seed0"], videos[0] if videos else None, report["wall_s"],
                        skipped=False)
    write_record(cfg.eval_record(robot), key, fields(result), report)
    return result

