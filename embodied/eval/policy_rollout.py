"""Rolling a trained policy out in a simulated task: one episode, seeded.

The env steps at the robot's control rate (one action per control period of sim time);
the policy is queried for chunks as the `ChunkExecutor` asks. Each worker process loads a
checkpoint once (`load_policy` caches it) and uses its share of the cores.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embodied.runtime.chunking import ChunkExecutor, Execution


@dataclass(frozen=True)
class PolicySpec:
    """Which policy a rollout runs and how.

    Args:
        path: checkpoint folder or run folder (its `last` checkpoint); adapters next to it load too.
        execution: how chunks become actions.
        language_cache: folder of cached instruction embeddings (None: no disk cache).
        threads: torch threads of the process that runs the policy (0: every core).
    """

    path: str
    execution: Execution = field(default_factory=Execution)
    language_cache: str | None = None
    threads: int = 0


@dataclass
class PolicyEpisode:
    instruction: str
    success: bool
    steps: int
    chunks: int
    infer_seconds: float
    frames: list[np.ndarray] = field(default_factory=list)


_POLICIES: dict[tuple[str, str | None], Any] = {}  # per worker process


def load_policy(spec: PolicySpec, robot: str) -> Any:
    """The policy of `spec` (loaded once per process) for `robot`."""
    import torch

    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.rundir import resolve_policy

    key = (spec.path, spec.language_cache)
    if key not in _POLICIES:
        torch.set_num_threads(spec.threads or os.cpu_count() or 1)
        _POLICIES[key] = load_checkpoint(resolve_policy(spec.path), language=LanguageEncoder(cache_dir=spec.language_cache))
    policy = _POLICIES[key]
    if robot not in policy.adapters.names:
        load_checkpoint(resolve_policy(spec.path), robots_needed=[robot], language=policy.language)  # raises clearly
    return policy


def run_policy(env: Any, policy: Any, seed: int, execution: Execution, record: bool = False,
               instruction_set: str = "train") -> PolicyEpisode:
    """Reset `env` with `seed` and run `policy` until success or time out."""
    import torch

    from embodied.policy import Observation

    obs, info = env.reset(seed=seed, options={"instruction_set": instruction_set})
    robot = env.robot.name
    generator = torch.Generator().manual_seed(seed)  # flow-head noise: seeded per episode
    executor = ChunkExecutor(execution, policy.config.chunk)
    out = PolicyEpisode(env.instance.instruction, False, 0, 0, 0.0, [env.render()] if record else [])
    while True:
        if executor.needs_chunk():
            t0 = time.perf_counter()
            chunk = policy.act(Observation(robot, obs["instruction"], obs["state"], obs["images"]), generator)
            out.infer_seconds += time.perf_counter() - t0
            out.chunks += 1
            executor.push(chunk.actions)
        obs, _, terminated, truncated, info = env.step(executor.next())
        out.steps += 1
        if record:
            out.frames.append(env.render())
        out.success = out.success or bool(info["success"])
        if terminated or truncated:
            return out


def write_video(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    from embodied.media import write_mp4

    write_mp4(Path(path), frames, fps)
