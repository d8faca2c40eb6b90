"""Where a policy's episodes go wrong, chunk by chunk.

A success rate says how often; this says where. For each chunk a torch policy is asked for,
it records the end-effector's offset from the named target [mm], the measured gripper opening,
the target's offset from the named goal (a task with one: place, push, stack) and, for a policy
with grounding keypoints, how far keypoints 0 and 1 are from the target and the goal in each
camera [px]. "The arm closed 6 cm beside the cube while keypoint 0 was on it within a pixel"
points at the action pathway; "keypoint 0 was 20 px off" at perception; "the cube left the
fingers 5 cm before the bin" at the carry. Per episode it also records where the grasp was
tried: the end-effector's offset when the fingers first closed to within a tenth of a cube
edge of a centred cube's faces ("closed 25 mm above the cube's centre" is a grasp that
started too high, not one that missed in the plane).

    python -m embodied.eval.probe --policy runs/X --robot ur5e --task lift --episodes 8

Prints one JSON object per episode (seeds from --seed0, as `embodied eval` draws them).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embodied.eval.policy_rollout import PolicySpec, load_policy, run_policy
from embodied.policy.io import ActionChunk, Observation
from embodied.runtime.chunking import Execution

GRASP_GAP = 1.2  # finger gap [cube edges] below which the fingers are closing on a grasp


@dataclass
class ChunkProbe:
    """One chunk request: the end-effector minus the named target [mm] (world x, y, z), the
    gripper opening [0, 1], the named target minus the named goal [mm] (empty for a task
    without a goal), and keypoint 0's and 1's errors per camera [px] (from the target and the
    goal; empty for a policy without keypoints; NaN where the object is out of view or the
    task has no goal)."""

    offset_mm: list[float]
    opening: float
    to_goal_mm: list[float] = field(default_factory=list)
    keypoint_px: dict[str, float] = field(default_factory=dict)
    goal_keypoint_px: dict[str, float] = field(default_factory=dict)


def ee_offset_mm(env: Any) -> np.ndarray:
    """The end-effector minus the named target [mm] (world x, y, z)."""
    scene = env.scene
    return (scene.data.site(env.robot.ee_site).xpos - scene.body_pos(env.instance.target)) * 1000.0


def finger_gap(env: Any) -> float:
    """The measured finger gap [m] (the gripper joint is each finger's travel)."""
    g = env.robot.gripper
    return 2.0 * env.scene.gripper_opening() * abs(g.open - g.closed)


class GraspWatch:
    """Where the end-effector was when the finger gap first fell below GRASP_GAP cube edges
    (the experts approach at 1.6 and hold a cube at 1.0): `grasp` is {"step", "offset_mm"}
    from the named target, or None while the fingers have not closed that far."""

    def __init__(self, env: Any):
        self.env, self.steps, self.grasp = env, 0, None

    def update(self) -> None:
        self.steps += 1
        if self.grasp is None and finger_gap(self.env) < GRASP_GAP * self.env.robot.workspace.object_size:
            self.grasp = {"step": self.steps, "offset_mm": np.round(ee_offset_mm(self.env), 1).tolist()}


class ProbedPolicy:
    """A torch rollout policy that records a `ChunkProbe` before each chunk it returns."""

    def __init__(self, policy: Any, env: Any):
        self.inner, self.env, self.chunk = policy, env, policy.chunk
        self.probes: list[ChunkProbe] = []

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)
        self.probes = []

    def act(self, obs: Observation) -> ActionChunk:
        env, scene = self.env, self.env.scene
        target, goal = scene.body_pos(env.instance.target), env.instance.goal
        offset = ee_offset_mm(env)
        to_goal = [] if goal is None else np.round((target - scene.body_pos(goal)) * 1000.0, 1).tolist()
        errors = self._keypoint_errors(obs)
        self.probes.append(ChunkProbe(np.round(offset, 1).tolist(), round(scene.gripper_opening(), 3), to_goal,
                                      {c: e[0] for c, e in errors.items()}, {c: e[1] for c, e in errors.items()}))
        return self.inner.act(obs)

    def _keypoint_errors(self, obs: Observation) -> dict[str, tuple[float, float]]:
        """{camera: (keypoint 0 from the target, keypoint 1 from the goal) [px]}."""
        vla = self.inner.policy
        if not vla.config.image_keypoints:
            return {}
        truth = self.env.role_pixels()
        cameras = {c.name: c for c in self.env.robot.cameras}
        out = {}
        for name, k in vla.keypoints_by_camera(obs).items():
            cam = cameras[name]
            n = min(len(k), 2)  # a policy with one keypoint locates no goal
            d = (k[:n] - truth[name][:n]) * np.array([cam.width, cam.height]) / 2.0
            errors = [round(float(e), 2) for e in np.hypot(d[:, 0], d[:, 1])] + [float("nan")] * (2 - n)
            out[name] = (errors[0], errors[1])
        return out


def probe_episode(policy: Any, env: Any, seed: int, execution: Execution = Execution()) -> dict[str, Any]:
    """Run one seeded episode of the torch rollout `policy` in `env`, recording each chunk and
    where the grasp was tried (`GraspWatch`)."""
    probed, grasp = ProbedPolicy(policy, env), GraspWatch(env)
    episode = run_policy(env, probed, seed, execution, on_step=grasp.update)
    xy = [float(np.hypot(*p.offset_mm[:2])) for p in probed.probes]
    return {"seed": seed, "success": episode.success, "target": episode.target, "manipulated": episode.manipulated,
            "closest_xy_mm": round(min(xy), 1), "grasp": grasp.grasp, "chunks": [vars(p) for p in probed.probes]}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from sim_scenes.env import TaskEnv

    p = argparse.ArgumentParser(prog="python -m embodied.eval.probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="run folder or checkpoint (torch)")
    p.add_argument("--robot", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--seed0", type=int, default=100000, help="first seed (default: embodied eval's)")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--execute", type=int, default=0, help="actions run per chunk (0: the whole chunk)")
    args = p.parse_args(argv)
    policy = load_policy(PolicySpec(args.policy), args.robot)
    env = TaskEnv(args.task, args.robot)
    out = []
    for seed in range(args.seed0, args.seed0 + args.episodes):
        out.append(probe_episode(policy, env, seed, Execution(execute=args.execute)))
        print(json.dumps(out[-1]))
    return out


if __name__ == "__main__":
    main()
