"""Closed-loop pushing: stand behind the cube on the line to the zone, push along it, and
re-approach whenever the cube slips off the line."""

from __future__ import annotations

import numpy as np

from sim_scenes.experts.base import Expert, Phase, Pose, closest_yaw, wrap
from sim_scenes.props import ZONE_SIDE
from sim_scenes.tasks.push import PUSH_STANDOFF


class PushExpert(Expert):
    GAP = 0.7  # finger gap while pushing [cube edges]: both fingertips touch the cube's back face
    DONE_RADIUS = 0.2 * ZONE_SIDE  # stop pushing when the cube is this close to the zone centre [cube edges]

    def _line(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Cube position, unit push direction and distance to the zone centre (xy)."""
        cube = self.scene.body_pos(self.instance.target)[:2]
        d = self.scene.body_pos(self.instance.goal)[:2] - cube
        dist = float(np.linalg.norm(d))
        return cube, d / max(dist, 1e-9), dist

    def _push_yaw(self, u: np.ndarray, xy) -> float:
        """Closing axis perpendicular to the push direction (fingers side by side)."""
        return closest_yaw(float(np.arctan2(u[1], u[0]) - np.pi / 2), np.pi, self.natural_yaw(xy))

    def _behind(self, z: float) -> Pose:
        cube, u, _ = self._line()
        xy = cube - u * PUSH_STANDOFF * self.s
        return Pose(np.array([*xy, z]), self._push_yaw(u, xy))

    def _gap_command(self) -> float:
        return self.gap_command(self.GAP * self.s)

    def plan(self) -> list[Phase]:
        g = self._gap_command()
        return [Phase(lambda: self._behind(self.hover), g, joint_space=True),
                Phase(lambda: self._behind(self.s / 2), g, min_time=0.4),
                Phase(None, g, servo=self._push)]

    def replan(self) -> list[Phase]:
        if self._line()[2] < self.DONE_RADIUS * self.s:
            return [] if self.pose().pos[2] > 2 * self.s else [self.lift_to(self.hover, self._gap_command())]
        g = self._gap_command()
        return [self.lift_to(self.hover, g), Phase(lambda: self._behind(self.hover), g),
                Phase(lambda: self._behind(self.s / 2), g, min_time=0.4), Phase(None, g, servo=self._push)]

    def _push(self, pose: Pose) -> Pose | None:
        """One tick of pushing; None hands back to `replan` (done, or cube off the line)."""
        cube, u, dist = self._line()
        if dist < self.DONE_RADIUS * self.s:
            return None
        rel = pose.pos[:2] - cube
        lateral = rel - np.dot(rel, u) * u
        if np.linalg.norm(lateral) > 0.4 * self.s or -np.dot(rel, u) < 0.4 * self.s:
            return None
        xy = pose.pos[:2] + 0.25 * self.speed * self.scene.control_dt * u - 0.5 * lateral
        yaw = pose.yaw + 0.3 * wrap(self._push_yaw(u, xy) - pose.yaw)
        return Pose(np.array([*xy, self.s / 2]), yaw)
