from sim_scenes.scene import Scene
from sim_scenes.tasks.base import Instance, Task

LIFT_HEIGHT = 2.0  # cube edges above the table


class Lift(Task):
    """Pick up the named cube; the others are distractors."""

    name = "lift"
    time_limit = 8.0
    layout = {"cube": 3}

    def success(self, scene: Scene, inst: Instance) -> bool:
        return bool(scene.body_pos(inst.target)[2] - self.s / 2 >= LIFT_HEIGHT * self.s)
