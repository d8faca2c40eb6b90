import numpy as np

from sim_scenes.props import ZONE_SIDE

PUSH_STANDOFF = 1.6  # pusher start behind the cube centre [cube edges]
from sim_scenes.scene import Scene
from sim_scenes.tasks.base import Instance, Task


class Push(Task):
    """Push the named cube onto the named zone (a coloured square on the table)."""

    name = "push"
    time_limit = 12.0
    goal_kind = "zone"
    layout = {"cube": 2, "zone": 2}

    def feasible(self, xy: dict[str, np.ndarray], target: str, goal: str | None) -> bool:
        """The pusher's start, behind the cube on the line to the zone, lies in the workspace,
        and no other cube stands in the corridor swept from there to the zone."""
        d = xy[goal] - xy[target]
        start = xy[target] - d / np.linalg.norm(d) * PUSH_STANDOFF * self.s
        lo = np.asarray(self.robot.workspace.center) - np.asarray(self.robot.workspace.size) / 2
        inside = np.all(start >= lo) and np.all(start <= lo + np.asarray(self.robot.workspace.size))
        seg = xy[goal] - start
        for other in (n for n in xy if n.startswith("cube") and n != target):
            t = np.clip(np.dot(xy[other] - start, seg) / np.dot(seg, seg), 0.0, 1.0)
            if np.linalg.norm(xy[other] - (start + t * seg)) <= 1.6 * self.s:
                return False
        return bool(inside)

    def success(self, scene: Scene, inst: Instance) -> bool:
        cube, zone = scene.body_pos(inst.target), scene.body_pos(inst.goal)
        inside = np.all(np.abs(cube[:2] - zone[:2]) < ZONE_SIDE * self.s / 2)
        return bool(inside and cube[2] < self.s)
