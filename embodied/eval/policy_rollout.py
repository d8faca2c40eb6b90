"""Rolling a trained policy out in a simulated task: one episode, seeded.

The env steps at the robot's control rate (one action per control period of sim time);
the policy is queried for chunks as the `ChunkExecutor` asks. A policy is either a torch
checkpoint or an export bundle run by the torch-free `PolicyEngine` (ONNX Runtime, fp32 or
int8): both are driven through one small interface (`RolloutPolicy`), so the same seeds give
the same scenes and instructions whichever runs, and `embodied export` can gate an int8
model on the success it keeps. Each worker process loads a policy once (`load_policy`
caches it) and uses its share of the cores.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from embodied.policy.io import ActionChunk, Observation
from embodied.runtime.chunking import ChunkExecutor, Execution


@dataclass(frozen=True)
class PolicySpec:
    """Which policy a rollout runs and how.

    Args:
        path: checkpoint folder or run folder (its `last` checkpoint); adapters next to it load
            too. With `precision`: an export bundle folder.
        execution: how chunks become actions.
        language_cache: folder of cached instruction embeddings (None: no disk cache; checkpoints only).
        threads: torch or ONNX Runtime threads of the process that runs the policy (0: every core).
        precision: None for a torch checkpoint; "fp32" or "int8" to run the bundle at `path`
            with `PolicyEngine`.
    """

    path: str
    execution: Execution = field(default_factory=Execution)
    language_cache: str | None = None
    threads: int = 0
    precision: str | None = None


class RolloutPolicy(Protocol):
    """What `run_policy` drives: a chunk length, a per-episode reset and `act`."""

    chunk: int

    def reset(self, seed: int) -> None:
        """Start an episode; a flow head's noise is seeded with `seed` (reproducible episodes)."""
        ...

    def act(self, obs: Observation) -> ActionChunk:
        ...


class TorchPolicy:
    """A `VLAPolicy` (torch) as a RolloutPolicy."""

    def __init__(self, policy: Any):
        self.policy, self.chunk = policy, policy.config.chunk
        self.generator: Any = None

    def reset(self, seed: int) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(seed)

    def act(self, obs: Observation) -> ActionChunk:
        return self.policy.act(obs, self.generator)


class EnginePolicy:
    """A `PolicyEngine` (export bundle, ONNX Runtime, no torch) as a RolloutPolicy."""

    def __init__(self, engine: Any):
        self.engine, self.chunk = engine, engine.chunk

    def reset(self, seed: int) -> None:
        self.engine.seed = seed  # `PolicyEngine.reset` restarts its noise generator from `seed`
        self.engine.reset()

    def act(self, obs: Observation) -> ActionChunk:
        return self.engine.infer(obs)


@dataclass
class PolicyEpisode:
    """One rollout. `target` is the body the instruction names, `manipulated` the body the
    robot moved first (`sim_scenes.grounding`), None when it moved none."""

    instruction: str
    success: bool
    steps: int
    chunks: int
    infer_seconds: float
    frames: list[np.ndarray] = field(default_factory=list)
    target: str = ""
    manipulated: str | None = None


_POLICIES: dict[tuple[str, str | None, str | None], Any] = {}  # per worker process


def _load_checkpoint(spec: PolicySpec, robot: str) -> TorchPolicy:
    import torch

    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.rundir import resolve_policy

    key = (spec.path, spec.language_cache, None)
    if key not in _POLICIES:
        torch.set_num_threads(spec.threads or os.cpu_count() or 1)
        _POLICIES[key] = load_checkpoint(resolve_policy(spec.path), language=LanguageEncoder(cache_dir=spec.language_cache))
    policy = _POLICIES[key]
    if robot not in policy.adapters.names:
        load_checkpoint(resolve_policy(spec.path), robots_needed=[robot], language=policy.language)  # raises clearly
    return TorchPolicy(policy)


def _load_bundle(spec: PolicySpec, robot: str) -> EnginePolicy:
    from embodied.runtime import PolicyEngine

    key = (spec.path, None, spec.precision)
    if key not in _POLICIES:
        _POLICIES[key] = PolicyEngine(spec.path, precision=spec.precision, threads=spec.threads or os.cpu_count() or 1,
                                      robot=robot)
    return EnginePolicy(_POLICIES[key])


def load_policy(spec: PolicySpec, robot: str) -> RolloutPolicy:
    """The policy of `spec` (loaded once per process) for `robot`."""
    return _load_checkpoint(spec, robot) if spec.precision is None else _load_bundle(spec, robot)


def run_policy(env: Any, policy: RolloutPolicy, seed: int, execution: Execution, record: bool = False,
               instruction_set: str = "train", camera_jitter: float = 0.0,
               on_step: Callable[[], None] | None = None) -> PolicyEpisode:
    """Reset `env` and `policy` with `seed` and run the policy until success or time out,
    noting which object it manipulated. `camera_jitter` moves the scene cameras away from
    the robot's poses (`sim_scenes.camera.jittered_view`; the seed's layout stays).
    `on_step` is called after every control step (a probe reading the scene)."""
    from sim_scenes.grounding import ManipulationWatch

    obs, info = env.reset(seed=seed, options={"instruction_set": instruction_set, "camera_jitter": camera_jitter})
    robot = env.robot.name
    policy.reset(seed)
    executor = ChunkExecutor(execution, policy.chunk)
    watch = ManipulationWatch(env.scene)
    out = PolicyEpisode(env.instance.instruction, False, 0, 0, 0.0, [env.render()] if record else [],
                        env.instance.target)
    while True:
        if executor.needs_chunk():
            t0 = time.perf_counter()
            chunk = policy.act(Observation(robot, obs["instruction"], obs["state"], obs["images"]))
            out.infer_seconds += time.perf_counter() - t0
            out.chunks += 1
            executor.push(chunk.actions)
        obs, _, terminated, truncated, info = env.step(executor.next())
        out.steps += 1
        out.manipulated = watch.update()
        if on_step is not None:
            on_step()
        if record:
            out.frames.append(env.render())
        out.success = out.success or bool(info["success"])
        if terminated or truncated:
            return out


def write_video(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    from embodied.media import write_mp4

    write_mp4(Path(path), frames, fps)
