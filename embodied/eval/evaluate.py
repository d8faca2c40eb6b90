"""`evaluate(cfg)`: success rate of a trained policy on one robot x task, over seeded episodes.

Episodes use seeds seed0, seed0 + 1, ...; far from the seeds simulated demonstrations use
(0, 1, ...) by default, so the evaluation scenes are not training scenes. Before the
workers start, the parent embeds every instruction of those seeds into the disk cache, so
the sentence encoder loads at most once (here) instead of once per worker.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError
from embodied.runtime.chunking import Execution
from embodied.eval.policy_rollout import PolicySpec
from embodied.eval.rollouts import RolloutJob, run_jobs
from embodied.eval.stats import success_table, wilson_interval

DEFAULT_SEED0 = 100_000


@dataclass(frozen=True)
class EvalConfig:
    """Args:
        policy: checkpoint or run folder.
        robot, task: what to evaluate; episodes: how many (seeds seed0 ...).
        workers: rollout processes; instructions: "train" or "heldout" phrasings.
        video_dir: folder for mp4s of the first `videos` episodes (None: no videos).
        execution: open-loop steps per chunk or temporal ensembling.
        language_cache: cached instruction embeddings (None: embodied.train default).
    """

    policy: str
    robot: str
    task: str
    episodes: int = 50
    workers: int = 2
    instructions: str = "train"
    seed0: int = DEFAULT_SEED0
    video_dir: str | None = None
    videos: int = 2
    execution: Execution = field(default_factory=Execution)
    language_cache: str | None = None
    progress: bool = True

    def __post_init__(self):
        if self.episodes < 1 or self.workers < 1 or self.videos < 0:
            raise ConfigError(f"episodes and workers must be >= 1, videos >= 0; found {self.episodes}, "
                             f"{self.workers}, {self.videos}")


def _warm_language(cfg: EvalConfig, cache: str) -> list[str]:
    """Embed the instructions of every evaluation seed into the disk cache; returns them."""
    from embodied.policy import LanguageEncoder
    from sim_scenes.env import TaskEnv

    env = TaskEnv(cfg.task, cfg.robot, images=False, instruction_set=cfg.instructions)
    texts = [env.reset(seed=cfg.seed0 + i)[0]["instruction"] for i in range(cfg.episodes)]
    env.close()
    LanguageEncoder(cache_dir=cache)(texts)
    return texts


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the episodes; returns the JSON-ready report (rate, 95% Wilson interval, episodes)."""
    from embodied.policy import load_checkpoint, LanguageEncoder
    from embodied.train.config import default_language_cache
    from embodied.train.rundir import resolve_policy

    ckpt = resolve_policy(cfg.policy)
    cache = str(cfg.language_cache or default_language_cache())
    load_checkpoint(ckpt, robots_needed=[cfg.robot], language=LanguageEncoder(cache_dir=cache))  # fail fast, here
    _warm_language(cfg, cache)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    spec = PolicySpec(str(ckpt), cfg.execution, cache, threads)
    video = Path(cfg.video_dir) if cfg.video_dir else None
    jobs = [RolloutJob(cfg.robot, cfg.task, cfg.seed0 + i,
                       str(video / f"{cfg.robot}_{cfg.task}_{cfg.seed0 + i}.mp4") if video and i < cfg.videos else None,
                       cfg.instructions, spec) for i in range(cfg.episodes)]
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers=min(cfg.workers, cfg.episodes), progress=cfg.progress,
                       desc=f"eval {cfg.robot}/{cfg.task}")
    wall = time.perf_counter() - t0
    rate = success_table(results)[(cfg.robot, cfg.task)]
    lo, hi = wilson_interval(rate.successes, rate.episodes)
    return {
        "policy": str(ckpt), "robot": cfg.robot, "task": cfg.task, "instructions": cfg.instructions,
        "episodes": rate.episodes, "successes": rate.successes, "success_rate": rate.rate, "ci95": [lo, hi],
        "seed0": cfg.seed0, "execution": asdict(cfg.execution), "workers": cfg.workers, "wall_s": round(wall, 1),
        "infer_ms_mean": round(sum(r.infer_ms for r in results) / len(results), 3),
        "videos": [r.video for r in results if r.video],
        "results": [{"seed": r.seed, "success": r.success, "steps": r.steps, "instruction": r.instruction,
                     "seconds": round(r.seconds, 2), "chunks": r.chunks, "infer_ms": r.infer_ms, "video": r.video}
                    for r in results],
    }
