"""Task: owns its props, episode initialization (seeded), instruction and success predicate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import mujoco
import numpy as np

from robots import RobotSpec
from sim_scenes import language
from sim_scenes.errors import PlacementError
from sim_scenes.placement import place
from sim_scenes.props import COLORS, Prop, add_bin, add_cube, add_zone
from sim_scenes.scene import Scene


@dataclass(frozen=True)
class Instance:
    """One randomized episode of a task."""

    instruction: str
    target: str  # body manipulated
    goal: str | None  # zone, bin or cube the target goes to
    colors: dict[str, str] = field(default_factory=dict)  # body -> colour name

    def noun(self, body: str) -> str:
        return noun(body, self.colors)


def noun(body: str, colors: dict[str, str]) -> str:
    """How instructions name a prop: "red cube", "blue bin", "green zone"."""
    return f"{colors[body]} {'cube' if body.startswith('cube') else body.rstrip('0123456789')}"


class Task(ABC):
    """A language-conditioned manipulation task, sized to the robot's workspace.

    Subclasses declare their props in `layout` as (kind, count) and implement `success`.
    """

    name: ClassVar[str]
    time_limit: ClassVar[float]  # episode length [s] before truncation
    layout: ClassVar[dict[str, int]]  # prop kind -> count
    _builders = {"cube": add_cube, "bin": add_bin, "zone": add_zone}

    def __init__(self, robot: RobotSpec):
        self.robot = robot
        self.s = robot.workspace.object_size

    def build(self, spec: mujoco.MjSpec) -> list[Prop]:
        self.props = [self._builders[kind](spec, f"{kind}{i}", self.s)
                      for kind, count in self.layout.items() for i in range(count)]
        return self.props

    def reset(self, scene: Scene, rng: np.random.Generator, instruction_set: str = "train") -> Instance:
        """Randomize colours and poses, and draw an instruction; the robot is reset by the env."""
        colors: dict[str, str] = {}
        for kind in self.layout:
            names = [p.name for p in self.props if p.kind == kind]
            for name, color in zip(names, rng.choice(list(COLORS), size=len(names), replace=False)):
                colors[name] = str(color)
                scene.set_color(name, COLORS[str(color)])
        for _ in range(100):
            xy = place(self.props, self.robot.workspace, rng, margin=0.2 * self.s)
            if self.feasible(xy):
                break
        else:
            raise PlacementError(f"task {self.name!r}: no feasible layout in 100 draws for robot {self.robot.name!r}; "
                                 "enlarge workspace.size in robot.toml")
        for p in self.props:
            z = self.s / 2 if p.kind == "cube" else 0.0
            yaw = rng.uniform(-np.pi / 4, np.pi / 4) if p.kind != "zone" else 0.0
            scene.set_pose(p.name, [*xy[p.name], z], yaw)
        target, goal = self.roles()
        words = {"object": noun(target, colors)}
        if goal is not None:
            words[{"zone": "zone", "bin": "container", "cube": "base"}[goal.rstrip("0123456789")]] = noun(goal, colors)
        return Instance(language.instruct(self.name, instruction_set, rng, **words), target, goal, colors)

    def feasible(self, xy: dict[str, np.ndarray]) -> bool:
        """Whether a sampled layout (prop -> xy [m]) leaves the task solvable; default: always."""
        return True

    def roles(self) -> tuple[str, str | None]:
        """Body names of the target and the goal. Slot 0 of each kind plays the role:
        colours and poses are random, so the slot index carries no information."""
        return "cube0", None

    @abstractmethod
    def success(self, scene: Scene, inst: Instance) -> bool: ...
