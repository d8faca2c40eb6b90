"""Run one episode of an env with an expert (or any `act(obs) -> action` callable)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim_scenes import experts
from sim_scenes.env import TaskEnv


@dataclass
class Episode:
    instruction: str
    success: bool
    steps: int
    frames: list[np.ndarray] = field(default_factory=list)  # render() frames when recorded


VIDEO_TAIL = 0.7  # seconds of video kept after the episode ends, so a viewer sees the outcome


def run_expert(env: TaskEnv, seed: int, record: bool = False, instruction_set: str = "train") -> Episode:
    """Reset `env` with `seed`, roll the task's scripted expert out until success or time out."""
    obs, info = env.reset(seed=seed, options={"instruction_set": instruction_set})
    expert = experts.make(env.task.name, env.scene, env.instance)
    frames = [env.render()] if record else []
    steps, success = 0, False
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act())
        steps += 1
        if record:
            frames.append(env.render())
        success = success or info["success"]
        if terminated or truncated:
            break
    if record:  # frames only: the episode (and its success) ended above
        for _ in range(int(VIDEO_TAIL * env.robot.control_hz)):
            env.step(expert.act())
            frames.append(env.render())
    return Episode(env.instance.instruction, bool(success), steps, frames)
