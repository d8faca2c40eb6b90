"""MuJoCo task scenes for embodied: arena, props, language-conditioned tasks, gymnasium
envs and scripted experts. Importing registers one gymnasium id per task:

    gymnasium.make("embodied/Lift-v0", robot="so100")
"""

import os as _os

# Scenes render offscreen only; EGL unless the user chose (osmesa is the fallback). Must be
# set before mujoco is imported, in every process, worker processes included.
_os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as _gym  # noqa: E402

from sim_scenes import tasks  # noqa: E402
from sim_scenes.errors import PlacementError, SimScenesError, UnknownTask, UnreachableWorkspace


def env_id(task: str) -> str:
    return f"embodied/{task.capitalize()}-v0"


for _name in tasks.available():
    if env_id(_name) not in _gym.registry:
        _gym.register(id=env_id(_name), entry_point="sim_scenes.env:TaskEnv", kwargs={"task": _name})

__all__ = ["PlacementError", "SimScenesError", "UnknownTask", "UnreachableWorkspace", "env_id", "tasks"]
