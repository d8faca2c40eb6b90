import numpy as np

from sim_scenes.scene import Scene
from sim_scenes.tasks.base import Instance, Task


class Stack(Task):
    """Stack the named cube on the named base cube, and let go of it."""

    name = "stack"
    time_limit = 12.0
    goal_kind = "cube"
    layout = {"cube": 3}

    def success(self, scene: Scene, inst: Instance) -> bool:
        top, base = scene.body_pos(inst.target), scene.body_pos(inst.goal)
        on_top = np.linalg.norm(top[:2] - base[:2]) < 0.5 * self.s and 0.8 * self.s < top[2] - base[2] < 1.2 * self.s
        return bool(on_top and not scene.touching_robot(inst.target))
