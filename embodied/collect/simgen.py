"""Scripted-expert demonstrations, generated in parallel worker processes.

Workers each own an env (renderers created after they start, from a fork server); the
parent is the only writer of the store and appends episodes in seed order. Generation is
resumable: seeds already in the store are skipped, so re-running the same command after an
interruption continues where it stopped.

With `variants` > 1, each seed's scene is demonstrated several times with other objects in
the task's roles (`sim_scenes.tasks.base.Task.role_variants`): the images of the first
frame are the same, the instruction and the actions differ. A policy cannot then pick its
target by recognising the scene; it has to read the instruction. An episode keeps its
seed, and its instruction names its variant. Layouts are drawn for variant 0; a variant
the arm cannot reach or the expert fails in this layout counts as failed and is dropped.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

import robots
from embodied.data.episode import Episode
from embodied.data.store import open_robot_store
from embodied.errors import SchemaMismatch


@dataclass(frozen=True)
class SimgenConfig:
    robot: str
    task: str
    episodes: int  # episodes to have in the store when done
    out: Path
    workers: int = 1
    keep_failed: bool = False
    instruction_set: str = "train"
    first_seed: int = 0
    pace: float = 1.0  # the expert's speed factor; recorded in the store, which holds one pace
    variants: int = 1  # demonstrations per scene, each with other objects in the task's roles
    settle: float | None = None  # [s] recorded after success (`run_expert`; None: the task's own); one per store
    camera_jitter: float = 0.0  # scene cameras moved per episode (`sim_scenes.camera.jittered_view`); one per store


# How demonstrations were made, as a store records it: store attribute -> config field. A store
# written before an attribute existed holds the field's default, or UNRECORDED's where the
# field's default is resolved later (settle: the task's own); a field without either, the task,
# is then unknown and not checked. The CLI flag is --<field> (underscores as dashes). One store
# holds one task: the seeds it holds are skipped when it is extended, whatever task made them.
DEMONSTRATION_SETTINGS = {"sim_task": "task", "expert_pace": "pace", "expert_settle": "settle",
                          "scene_camera_jitter": "camera_jitter"}
UNRECORDED = {"settle": 0.0}


def _episode(args: tuple["SimgenConfig", int, int]) -> tuple[int, Episode | None]:
    """One demonstration of (config, seed, variant), or None for a role variant the arm cannot
    reach in this layout."""
    from sim_scenes.env import worker_env
    from sim_scenes.errors import UnreachableWorkspace
    from sim_scenes.rollout import run_expert

    cfg, seed, variant = args
    env = worker_env(cfg.task, cfg.robot, images=True)
    try:
        r = run_expert(env, seed, instruction_set=cfg.instruction_set, keep_observations=True, pace=cfg.pace,
                       variant=variant, settle=cfg.settle, camera_jitter=cfg.camera_jitter)
    except UnreachableWorkspace:
        if variant == 0:  # the layouts of variant 0 lie in the workspace: robot.toml is wrong
            raise
        return seed, None
    t = len(r.actions)
    ep = Episode(state=np.stack(r.states), action=np.stack(r.actions),
                 timestamp=(np.arange(t) / env.robot.control_hz).astype(np.float32),
                 images={c: np.stack([im[c] for im in r.images]) for c in r.images[0]},
                 role_pixels={c: np.stack([px[c] for px in r.role_pixels]) for c in r.role_pixels[0]},
                 task=r.instruction, success=r.success, source="sim", seed=seed)
    return seed, ep


def generate(cfg: SimgenConfig, progress: bool = True) -> dict:
    """Fill `cfg.out` up to `cfg.episodes` episodes; returns counts."""
    from sim_scenes import experts, tasks
    from sim_scenes.errors import InvalidCameraJitter, InvalidPace, InvalidSettle, UnknownVariant

    task = tasks.get(cfg.task)
    if cfg.settle is None:
        cfg = replace(cfg, settle=task.settle)
    InvalidPace.check(cfg.pace)  # before the store records them
    InvalidSettle.check(cfg.settle)
    InvalidCameraJitter.check(cfg.camera_jitter)
    robot = robots.load(cfg.robot)
    available = len(task(robot).role_variants())
    if isinstance(cfg.variants, bool) or not isinstance(cfg.variants, int) or not 1 <= cfg.variants <= available:
        raise UnknownVariant(f"--variants {cfg.variants}: task {cfg.task!r} has {available} role variants "
                             f"(1 to {available})")
    store = open_robot_store(cfg.out, robot, {c.name: (c.height, c.width) for c in robot.cameras})
    defaults = {f.name: f.default for f in fields(SimgenConfig)} | UNRECORDED
    for key, name in DEMONSTRATION_SETTINGS.items():
        held, value = store.attrs.get(key, defaults[name]), getattr(cfg, name)
        if store.num_episodes and held is not MISSING and held != value:
            raise SchemaMismatch(f"{cfg.out} holds demonstrations made with {key} {held}, not {value}; generate "
                                 f"with --{name.replace('_', '-')} {held} to extend it, or write to a new store")
    held_version = store.attrs.get("expert_version", 1)  # stores written before the attribute: version 1
    if store.num_episodes and held_version != experts.VERSION:
        raise SchemaMismatch(f"{cfg.out} holds demonstrations of expert version {held_version}; the experts are now "
                             f"version {experts.VERSION} (sim_scenes/experts/__init__.py says what changed), and one "
                             "store holds one version: write to a new store")
    for key, name in DEMONSTRATION_SETTINGS.items():
        store.set_attr(key, getattr(cfg, name))
    store.set_attr("expert_version", experts.VERSION)
    done = store.seeds()
    start = store.num_episodes
    need = cfg.episodes - start
    summary = {"kept": 0, "failed": 0, "skipped_existing": start}
    if need <= 0:
        return summary
    bar = tqdm(total=need, desc=f"simgen {cfg.robot}/{cfg.task}", unit="ep", disable=not progress)

    def seeds():
        s = cfg.first_seed
        while True:
            if s not in done:
                for variant in range(cfg.variants):
                    yield cfg, s, variant
            s += 1

    # Episodes are asked for in finite rounds, each drained to its end: terminating a pool while
    # a worker is still writing an episode (megabytes of images) to the result pipe can leave a
    # partial message there, and the pool's result thread then waits for its end forever.
    workers, tasks = max(1, cfg.workers), seeds()
    with mp.get_context("forkserver").Pool(workers) as pool:
        while summary["kept"] < need:
            for seed, ep in pool.imap(_episode, itertools.islice(tasks, max(need - summary["kept"], workers))):
                if summary["kept"] >= need:
                    continue  # a round's surplus: computed, not kept
                if ep is not None and (ep.success or cfg.keep_failed):
                    store.append(ep)
                    summary["kept"] += 1
                    bar.update()
                else:
                    summary["failed"] += 1
    bar.close()
    return summary
