"""One gymnasium Env for every robot x task, parameterized by names.

    env = gymnasium.make("embodied/Lift-v0", robot="so100", render_mode="rgb_array")

Observation: {"state": float32[n+1], "images": {camera: uint8[H, W, 3]}, "instruction": str}.
Action: the robot's action space (absolute joint targets [rad] + gripper in [0, 1]).
`info["success"]` is the task's predicate on simulator state; an episode terminates on
success and is truncated after the task's time limit. Reset options: "instruction_set"
("train" or "heldout"), "variant" (who plays the task's roles, `Task.role_variants`) and
"camera_jitter" (in [0, 1]: how far the scene cameras stray from robot.toml's poses this
episode, `sim_scenes.camera.jittered_view`; drawn after the layout, so a seed's layout is the
same at any jitter).

Vectorized: `gymnasium.make_vec(id, n, vectorization_mode="async", robot=...,
vector_kwargs={"context": "forkserver", "shared_memory": False})`. Renderers are created
lazily in the process that renders; a process that has rendered must not be forked (its
EGL context hangs the child), and gymnasium's shared memory cannot carry Text observations.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

import robots
from sim_scenes import language, tasks
from sim_scenes.camera import jittered_view, project
from sim_scenes.errors import InvalidCameraJitter
from sim_scenes.scene import Scene, build_scene

VIDEO_SIZE = (480, 360)  # (width, height) of render() frames
ROLES = ("target", "goal")  # rows of `TaskEnv.role_pixels`


class TaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, task: str, robot: str = "so100", render_mode: str | None = None,
                 instruction_set: str = "train", images: bool = True, camera_jitter: float = 0.0):
        self.robot = robots.load(robot)
        self.task = tasks.get(task)(self.robot)
        language.phrasings(self.task.name, instruction_set)  # validates the set name
        self.instruction_set = instruction_set
        self.camera_jitter = InvalidCameraJitter.check(camera_jitter)
        self.images = images
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.robot.control_hz}
        self.scene: Scene = build_scene(self.robot, self.task)
        self.max_steps = int(round(self.task.time_limit * self.robot.control_hz))
        lo = [j.range[0] for j in self.robot.joints] + [0.0]
        hi = [j.range[1] for j in self.robot.joints] + [1.0]
        self.action_space = gym.spaces.Box(np.array(lo, np.float32), np.array(hi, np.float32), dtype=np.float32)
        n = self.robot.action_dim
        obs = {
            "state": gym.spaces.Box(-np.inf, np.inf, (n,), np.float32),
            "instruction": gym.spaces.Text(language.MAX_LENGTH, charset=language.CHARSET),
        }
        if images:
            obs["images"] = gym.spaces.Dict({
                c.name: gym.spaces.Box(0, 255, (c.height, c.width, 3), np.uint8) for c in self.robot.cameras})
        self.observation_space = gym.spaces.Dict(obs)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}  # created lazily, in the process that renders
        self.instance: tasks.Instance | None = None
        self._t = 0

    # --- gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.scene.reset_robot(np.array(self.robot.home))
        self.instance = self.task.reset(self.scene, self.np_random, options.get("instruction_set", self.instruction_set),
                                        options.get("variant", 0))
        self._place_cameras(options.get("camera_jitter", self.camera_jitter))  # jittered_view validates it
        mujoco.mj_forward(self.scene.model, self.scene.data)
        self._t = 0
        return self._observation(), self._info()

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), self.action_space.low, self.action_space.high)
        self.scene.apply_action(action)
        self.scene.step()
        self._t += 1
        info = self._info()
        terminated = info["success"]
        truncated = self._t >= self.max_steps
        return self._observation(), float(terminated), terminated, truncated, info

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render("overview", *VIDEO_SIZE)
        return None

    def close(self):
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # --- helpers ---------------------------------------------------------------------
    def _place_cameras(self, jitter: float) -> None:
        """Every scene camera at its robot.toml pose (jitter 0) or a random one near it."""
        for c in self.robot.cameras:
            if c.mount == "scene":
                self.scene.place_camera(c.name, *jittered_view(c.pos, c.lookat, c.fovy, self.np_random, jitter))

    def _render(self, camera: str, width: int, height: int) -> np.ndarray:
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.scene.model, height, width)
        r = self._renderers[key]
        r.update_scene(self.scene.data, camera)
        return r.render()

    def camera_images(self) -> dict[str, np.ndarray]:
        """One uint8 RGB image per robot camera, at the spec's resolution."""
        return {c.name: self._render(c.name, c.width, c.height) for c in self.robot.cameras}

    def role_pixels(self) -> dict[str, np.ndarray]:
        """Where the instruction's objects are in each robot camera: float32[2, 2] per camera,
        the normalized image coordinates (`sim_scenes.camera.project`) of the target's and the
        goal's centres (rows in `ROLES` order); NaN for a task without a goal and for a point
        outside the image. Privileged: a label for training, never an observation."""
        inst, scene = self.instance, self.scene
        points = np.full((len(ROLES), 3), np.nan)
        points[0] = scene.body_pos(inst.target)
        if inst.goal is not None:
            points[1] = scene.body_pos(inst.goal)
        return {c.name: project(scene.model, scene.data, c.name, points, c.width, c.height) for c in self.robot.cameras}

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {"state": self.scene.state(), "instruction": self.instance.instruction}
        if self.images:
            obs["images"] = self.camera_images()
        return obs

    def _info(self) -> dict[str, Any]:
        return {"success": self.task.success(self.scene, self.instance), "instruction": self.instance.instruction}


@lru_cache(maxsize=None)
def worker_env(task: str, robot: str, images: bool, render_mode: str | None = None) -> TaskEnv:
    """One env per (task, robot, images, render_mode) in this process, reused across episodes
    by worker pools (building a scene costs far more than resetting it)."""
    return TaskEnv(task, robot, render_mode=render_mode, images=images)
