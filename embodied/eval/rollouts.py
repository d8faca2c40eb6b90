"""Run seeded rollouts (scripted expert or trained policy) in parallel worker processes.

Workers start from a fork server, not a fork of the caller: a process that has already
created an EGL context (any earlier render) must not be forked, or the child's renderer
hangs. Each worker keeps one env per (robot, task, rendering, images) and creates its own
renderers; a policy is loaded once per worker (`embodied.eval.policy_rollout`).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from embodied.eval.policy_rollout import PolicySpec


@dataclass(frozen=True)
class RolloutJob:
    """One episode. `policy` None: the task's scripted expert; otherwise that policy."""

    robot: str
    task: str
    seed: int
    video: str | None = None  # write an mp4 of this episode here
    instruction_set: str = "train"
    policy: PolicySpec | None = None
    camera_jitter: float = 0.0  # scene cameras moved from the robot's poses (`sim_scenes.camera.jittered_view`)


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
    chunks: int = 0  # policy queries (policy rollouts)
    infer_ms: float = 0.0  # mean policy latency per query [ms] (policy rollouts)
    target: str | None = None  # body the instruction names (policy rollouts)
    manipulated: str | None = None  # body the robot moved first, None: none (policy rollouts)
    target_color_shared: bool | None = None  # another prop had the target's colour (`Instance.target_color_shared`)

    @property
    def named_object(self) -> bool:
        """Whether the robot manipulated the object the instruction named."""
        return self.manipulated is not None and self.manipulated == self.target


def _env(job: RolloutJob):
    from sim_scenes.env import worker_env

    return worker_env(job.task, job.robot, images=job.policy is not None,
                      render_mode="rgb_array" if job.video else None)


def run_job(job: RolloutJob) -> RolloutResult:
    env = _env(job)
    t0 = time.perf_counter()
    if job.policy is None:
        from sim_scenes.rollout import run_expert

        ep = run_expert(env, job.seed, record=job.video is not None, instruction_set=job.instruction_set,
                        camera_jitter=job.camera_jitter)
        chunks, infer_ms, target, manipulated = 0, 0.0, None, None
    else:
        from embodied.eval.policy_rollout import load_policy, run_policy

        policy = load_policy(job.policy, job.robot)
        t0 = time.perf_counter()
        ep = run_policy(env, policy, job.seed, job.policy.execution, record=job.video is not None,
                        instruction_set=job.instruction_set, camera_jitter=job.camera_jitter)
        chunks, infer_ms = ep.chunks, 1000.0 * ep.infer_seconds / max(ep.chunks, 1)
        target, manipulated = ep.target, ep.manipulated
    if job.video:
        from embodied.media import write_mp4

        write_mp4(Path(job.video), ep.frames, env.robot.control_hz)
    return RolloutResult(job.robot, job.task, job.seed, ep.success, ep.steps, ep.instruction,
                         time.perf_counter() - t0, job.video, chunks, round(infer_ms, 3), target, manipulated,
                         env.instance.target_color_shared)


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
