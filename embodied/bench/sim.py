"""`embodied bench sim`: physics rate, camera rendering rate, scripted-expert success.

Rates are measured in a child process pinned to one CPU core, with Mesa's software
rasterizer limited to one thread (LP_NUM_THREADS=1), so "per core" means one core.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from embodied.bench.machine import describe

TARGETS = {"expert_success": 0.95, "physics_steps_per_s": 10_000, "observations_per_s": 150}


def _one_core() -> None:
    os.environ["LP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _physics_rate(robot: str, task: str) -> float:
    """mj_step calls per second while replaying a recorded expert episode (contacts included)."""
    import mujoco

    from sim_scenes import experts
    from sim_scenes.env import TaskEnv

    _one_core()
    env = TaskEnv(task, robot, images=False)
    env.reset(seed=0)
    expert = experts.make(task, env.scene, env.instance)
    actions = [expert.act() for _ in range(int(3 * env.robot.control_hz))]
    env.reset(seed=0)
    m, d, n = env.scene.model, env.scene.data, env.scene.n_substeps
    t0 = time.perf_counter()
    for a in actions:
        env.scene.apply_action(a)
        for _ in range(n):
            mujoco.mj_step(m, d)
    return len(actions) * n / (time.perf_counter() - t0)


def _render_rate(robot: str, task: str, frames: int = 300) -> float:
    """Observations per second, each one image from every robot camera (two per robot here)."""
    from sim_scenes.env import TaskEnv

    _one_core()
    env = TaskEnv(task, robot, images=True)
    env.reset(seed=0)
    env.camera_images()  # warm-up: context creation
    elapsed = 0.0
    for _ in range(frames):
        env.scene.step()  # physics moves the scene between frames; only rendering is timed
        t0 = time.perf_counter()
        env.camera_images()
        elapsed += time.perf_counter() - t0
    return frames / elapsed


def _isolated(fn, *args) -> float:
    with mp.get_context("forkserver").Pool(1) as pool:
        return pool.apply(fn, args)


def run(seeds: int = 50, workers: int = 2) -> dict:
    import robots
    from embodied.eval import RolloutJob, run_jobs, success_table
    from sim_scenes import tasks

    names, task_names = robots.available(), tasks.available()
    physics = {r: {t: round(_isolated(_physics_rate, r, t)) for t in task_names} for r in names}
    render = {r: {"cameras": [f"{c.name} {c.width}x{c.height}" for c in robots.load(r).cameras],
                  "observations_per_s": round(_isolated(_render_rate, r, "place"), 1)} for r in names}
    jobs = [RolloutJob(r, t, s) for r in names for t in task_names for s in range(seeds)]
    t0 = time.perf_counter()
    table = success_table(run_jobs(jobs, workers=workers, desc="expert rollouts"))
    expert_seconds = time.perf_counter() - t0
    experts = {f"{r}/{t}": {"success": s.rate, "ci95": [round(v, 3) for v in s.interval], "episodes": s.episodes}
               for (r, t), s in table.items()}
    worst = {
        "expert_success": min(v["success"] for v in experts.values()),
        "physics_steps_per_s": min(min(v.values()) for v in physics.values()),
        "observations_per_s": min(v["observations_per_s"] for v in render.values()),
    }
    return {
        "benchmark": "sim",
        "machine": describe(gl=os.environ.get("MUJOCO_GL", "")),
        "seeds_per_pair": seeds,
        "expert_wall_s": round(expert_seconds, 1),
        "physics_steps_per_s_one_core": physics,
        "render_one_core": render,
        "expert_success": experts,
        "worst": worst,
        "targets": TARGETS,
        "meets_targets": {k: bool(worst[k] >= TARGETS[k]) for k in TARGETS},
    }
