"""What the measurement protocols (positive transfer, a new arm) share: every run trained once to
its steps and evaluated once per checkpoint, so a protocol stopped midway resumes where it was."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from embodied.eval.stats import SuccessRate

if TYPE_CHECKING:
    from embodied.train import TrainConfig


def train_once(cfg: TrainConfig, say: Callable[[str], None], starting: str) -> Path:
    """Train `cfg.out` to `cfg.steps` (resuming it), or find it there; `starting` is said as it starts."""
    from embodied.train import train
    from embodied.train.rundir import trained_steps

    run = Path(cfg.out)
    if trained_steps(run) >= cfg.steps:
        say(f"{run} already trained to {cfg.steps} steps")
    else:
        say(starting)
        train(cfg)
    return run


def evaluate_once(policy: Path, robot: str, task: str, episodes: int, workers: int, language_cache: str | None,
                  protocol: str, trained: int) -> SuccessRate:
    """The success of `policy` on `robot`/`task`, its report kept as POLICY/eval/ROBOT_TASK_PROTOCOL.json
    and reused for the same weights: a run trained on to more steps, or a new adapter, is
    evaluated again."""
    from embodied.eval.evaluate import EvalConfig, evaluate_or_read

    report = evaluate_or_read(EvalConfig(str(policy), robot, task, episodes=episodes, workers=workers,
                                         language_cache=language_cache, progress=False),
                              policy / "eval" / f"{robot}_{task}_{protocol}.json", trained_steps=trained)
    return SuccessRate(report["successes"], report["episodes"])
