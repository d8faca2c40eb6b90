"""Task: owns its props, episode initialization (seeded), instruction and success predicate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import mujoco
import numpy as np

from robots import RobotSpec
from sim_scenes import language
from sim_scenes.errors import PlacementError, UnknownVariant
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

    @property
    def target_color_shared(self) -> bool:
        """Whether another prop has the target's colour (colours are drawn per kind, so a cube
        and a bin or zone may share one): only the noun ("cube", "bin") then tells the named
        object from the other one."""
        color = self.colors.get(self.target)
        return color is not None and any(c == color for body, c in self.colors.items() if body != self.target)


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
    target_kind: ClassVar[str] = "cube"  # kind of prop the instruction names as its object
    goal_kind: ClassVar[str | None] = None  # kind of prop it goes to (zone, bin, cube), if any
    # [s] a recorded demonstration goes on after success (`embodied simgen --settle` overrides): what
    # the skill still does once the predicate holds, and a policy must see to do it too
    settle: ClassVar[float] = 0.0
    _builders = {"cube": add_cube, "bin": add_bin, "zone": add_zone}

    def __init__(self, robot: RobotSpec):
        self.robot = robot
        self.s = robot.workspace.object_size

    def build(self, spec: mujoco.MjSpec) -> list[Prop]:
        self.props = [self._builders[kind](spec, f"{kind}{i}", self.s)
                      for kind, count in self.layout.items() for i in range(count)]
        return self.props

    def reset(self, scene: Scene, rng: np.random.Generator, instruction_set: str = "train",
              variant: int = 0) -> Instance:
        """Randomize colours and poses, and draw an instruction; the robot is reset by the env.

        `variant` picks who plays the roles (`role_variants`); the draws do not depend on it,
        so the variants of one seed are one scene with different instructions. The layout is
        drawn feasible for variant 0 (`feasible`); another variant may ask more of the robot
        (a push from outside the workspace, a cube in the way): its expert may fail."""
        target, goal = self.roles(variant)  # validates the variant before any draw
        drawn_for = self.roles(0)
        colors: dict[str, str] = {}
        for kind in self.layout:
            names = [p.name for p in self.props if p.kind == kind]
            for name, color in zip(names, rng.choice(list(COLORS), size=len(names), replace=False)):
                colors[name] = str(color)
                scene.set_color(name, COLORS[str(color)])
        for _ in range(100):
            xy = place(self.props, self.robot.workspace, rng, margin=0.2 * self.s)
            if self.feasible(xy, *drawn_for):
                break
        else:
            raise PlacementError(f"task {self.name!r}: no feasible layout in 100 draws for robot {self.robot.name!r}; "
                                 "enlarge workspace.size in robot.toml")
        for p in self.props:
            z = self.s / 2 if p.kind == "cube" else 0.0
            yaw = rng.uniform(-np.pi / 4, np.pi / 4) if p.kind != "zone" else 0.0
            scene.set_pose(p.name, [*xy[p.name], z], yaw)
        words = {"object": noun(target, colors)}
        if goal is not None:
            words[{"zone": "zone", "bin": "container", "cube": "base"}[goal.rstrip("0123456789")]] = noun(goal, colors)
        return Instance(language.instruct(self.name, instruction_set, rng, **words), target, goal, colors)

    def feasible(self, xy: dict[str, np.ndarray], target: str, goal: str | None) -> bool:
        """Whether a sampled layout (prop -> xy [m]) leaves the task solvable with these roles;
        default: always."""
        return True

    def role_variants(self) -> list[tuple[str, str | None]]:
        """Every (target, goal) the props can play, variant 0 first: slot 0 of each kind (the
        next slot for a goal of the target's kind). Colours and poses are random, so slot
        indices carry no information; giving the roles to other slots of the same scene makes
        counterfactual demonstrations (one scene, another instruction, other actions). The
        order varies every role as early as it can: push's variant 1 swaps both the cube
        and the zone."""
        def slots(kind: str | None) -> list[str | None]:
            return [f"{kind}{i}" for i in range(self.layout[kind])] if kind else [None]

        pairs = [(t, g) for t in slots(self.target_kind) for g in slots(self.goal_kind) if t != g]
        order, used = [], Counter()
        while pairs:
            best = min(pairs, key=lambda p: used[("target", p[0])] + used[("goal", p[1])])
            pairs.remove(best)
            order.append(best)
            used.update([("target", best[0]), ("goal", best[1])])
        return order

    def roles(self, variant: int = 0) -> tuple[str, str | None]:
        """Body names of the target and the goal in `variant` (`role_variants`)."""
        variants = self.role_variants()
        if isinstance(variant, bool) or not isinstance(variant, (int, np.integer)) or not 0 <= variant < len(variants):
            raise UnknownVariant(f"task {self.name!r} has role variants 0..{len(variants) - 1}, found {variant!r}")
        return variants[int(variant)]

    @abstractmethod
    def success(self, scene: Scene, inst: Instance) -> bool: ...
