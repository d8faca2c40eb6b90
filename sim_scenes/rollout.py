"""Run one episode of an env with its task's scripted expert."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim_scenes import experts
from sim_scenes.env import TaskEnv
from sim_scenes.errors import InvalidSettle

VIDEO_TAIL = 0.7  # seconds of video kept after the episode ends, so a viewer sees the outcome


@dataclass
class Rollout:
    instruction: str
    success: bool
    steps: int
    frames: list[np.ndarray] = field(default_factory=list)  # render() frames, when recorded
    # per step, when observations are kept: what the robot saw and what it was told to do
    states: list[np.ndarray] = field(default_factory=list)
    images: list[dict[str, np.ndarray]] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    role_pixels: list[dict[str, np.ndarray]] = field(default_factory=list)  # `TaskEnv.role_pixels`, a label


def run_expert(env: TaskEnv, seed: int, record: bool = False, instruction_set: str = "train",
               keep_observations: bool = False, pace: float = 1.0, variant: int = 0, settle: float = 0.0,
               camera_jitter: float = 0.0) -> Rollout:
    """Reset `env` with `seed` and roll the task's scripted expert out until success or time out.

    record: keep render() frames for a video. keep_observations: keep (observation, action)
    pairs, the raw material of a demonstration (needs an env built with images=True).
    pace: the expert's speed factor (`sim_scenes.experts.base.Expert`).
    variant: who plays the task's roles (`sim_scenes.tasks.base.Task.role_variants`).
    settle: after success, the expert goes on for this long [s] (its steps are part of the
        episode), and the episode succeeds only if the task still holds at the end. Without
        it a demonstration stops at the first instant of success: in place, the frame the
        gripper opens, so a policy sees almost no release and never a retreat, and learns
        to hover with the cube (`InvalidSettle` outside [0, 5] s).
    camera_jitter: how far the scene cameras stray from their robot.toml poses this episode
        (`sim_scenes.camera.jittered_view`; 0: not at all).
    """
    InvalidSettle.check(settle)
    obs, info = env.reset(seed=seed, options={"instruction_set": instruction_set, "variant": variant,
                                                  "camera_jitter": camera_jitter})
    expert = experts.make(env.task.name, env.scene, env.instance, pace)
    out = Rollout(env.instance.instruction, False, 0, [env.render()] if record else [])
    extra = None  # steps left after success, once it happened
    while extra is None or extra > 0:
        action = expert.act()
        if keep_observations:
            out.states.append(obs["state"])
            out.images.append(obs["images"])
            out.role_pixels.append(env.role_pixels())
            out.actions.append(action.astype(np.float32))
        obs, _, terminated, truncated, info = env.step(action)
        out.steps += 1
        if record:
            out.frames.append(env.render())
        if extra is not None:
            extra -= 1
            out.success = info["success"]
        elif terminated:
            out.success, extra = True, round(settle * env.robot.control_hz)
        elif truncated:
            break
    if record:  # frames only: the episode (and its success) ended above
        for _ in range(int(VIDEO_TAIL * env.robot.control_hz)):
            env.step(expert.act())
            out.frames.append(env.render())
    return out
