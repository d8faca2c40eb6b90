import numpy as np

from sim_scenes.props import BIN_HEIGHT, BIN_INNER
from sim_scenes.scene import Scene
from sim_scenes.tasks.base import Instance, Task


class Place(Task):
    """Put the named cube into the named bin, and let go of it."""

    name = "place"
    time_limit = 12.0
    goal_kind = "bin"
    settle = 0.5  # the release and retreat (docs/policy_experiments.md: a specialist never let go without)
    layout = {"bin": 2, "cube": 2}

    def success(self, scene: Scene, inst: Instance) -> bool:
        cube, yaw = scene.body_pos(inst.target), scene.body_yaw(inst.goal)
        c, s = np.cos(yaw), np.sin(yaw)
        d = cube[:2] - scene.body_pos(inst.goal)[:2]
        local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
        inside = np.all(np.abs(local) < BIN_INNER * self.s / 2) and cube[2] < BIN_HEIGHT * self.s + self.s / 2
        return bool(inside and not scene.touching_robot(inst.target))
