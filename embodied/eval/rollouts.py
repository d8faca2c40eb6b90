"""Run seeded expert rollouts in parallel worker processes.

Workers start from a fork server, not a fork of the caller: a process that has already
created an EGL context (any earlier render) must not be forked, or the child's renderer
hangs. Each worker keeps one env per (robot, task) and creates its own renderers.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class RolloutJob:
    robot: str
    task: str
    seed: int
    video: str | None = None  # write an mp4 of this episode here
    instruction_set: str = "train"


@dataclass(frozen=True)
class RolloutResult:
    robot: str
    task: str
    seed: int
    success: bool
    steps: int
    instruction: str
    seconds: float
    video: str | None = None


_ENVS: dict = {}  # per worker process: (robot, task, render) -> TaskEnv


def run_job(job: RolloutJob) -> RolloutResult:
    from sim_scenes.env import TaskEnv
    from sim_scenes.rollout import run_expert

    key = (job.robot, job.task, job.video is not None)
    if key not in _ENVS:
        _ENVS[key] = TaskEnv(job.task, job.robot, render_mode="rgb_array" if job.video else None, images=False)
    env = _ENVS[key]
    t0 = time.perf_counter()
    ep = run_expert(env, job.seed, record=job.video is not None, instruction_set=job.instruction_set)
    if job.video:
        from embodied.media import write_mp4

        write_mp4(Path(job.video), ep.frames, env.robot.control_hz)
    return RolloutResult(job.robot, job.task, job.seed, ep.success, ep.steps, ep.instruction,
                         time.perf_counter() - t0, job.video)


def run_jobs(jobs: list[RolloutJob], workers: int = 1, progress: bool = True, desc: str = "rollouts") -> list[RolloutResult]:
    """Run jobs (in `workers` processes when > 1); results come back in job order."""
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="ep")
    results: list[RolloutResult] = []
    if workers <= 1:
        for job in jobs:
            results.append(run_job(job))
            bar.update()
    else:
        with mp.get_context("forkserver").Pool(workers) as pool:
            for res in pool.imap(run_job, jobs, chunksize=max(1, min(10, len(jobs) // (4 * workers)))):
                results.append(res)
                bar.update()
    bar.close()
    return results
