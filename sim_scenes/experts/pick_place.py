"""Pick the target cube top-down, then hold it up, or release it into a bin or onto a cube."""

from __future__ import annotations

import numpy as np

from sim_scenes.experts.base import Expert, Phase, Pose
from sim_scenes.props import BIN_HEIGHT

CLOSED = 0.0
PREGRASP_GAP = 1.6  # finger gap while approaching a cube [cube edges]: clears it, spares neighbours


class PickPlace(Expert):
    """Shared pick sequence; `release_height` (None: only lift) says where to let go [m]."""

    def release_height(self) -> float | None:
        return None

    def plan(self) -> list[Phase]:
        t = self.instance.target
        opened = self.gap_command(PREGRASP_GAP * self.s)
        phases = [
            Phase(lambda: self.above(t, self.hover), opened, joint_space=True),
            Phase(lambda: self.above(t, self.s / 2, self.pose().yaw), opened, min_time=0.4),
            self.grip(CLOSED),
            self.lift_to(self.hover, CLOSED),
        ]
        z = self.release_height()
        if z is None:
            return phases + [Phase(None, CLOSED, min_time=0.5)]

        def over_goal(height: float) -> Pose:
            p = self.scene.body_pos(self.instance.goal)
            return Pose(np.array([p[0], p[1], height]), self.pose().yaw)

        return phases + [
            Phase(lambda: over_goal(self.hover), CLOSED, min_time=0.5),
            Phase(lambda: over_goal(z), CLOSED, min_time=0.4),
            self.grip(opened),
            self.lift_to(self.hover, opened),
        ]


class LiftExpert(PickPlace):
    pass


class PlaceExpert(PickPlace):
    def release_height(self) -> float:
        return BIN_HEIGHT * self.s + 0.8 * self.s


class StackExpert(PickPlace):
    def release_height(self) -> float:
        return self.s + self.s / 2 + 0.25 * self.s
