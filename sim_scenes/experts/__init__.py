"""Scripted experts, one per task, for every robot: `make(scene, instance)`."""

from __future__ import annotations

from sim_scenes.errors import UnknownTask
from sim_scenes.experts.base import Expert
from sim_scenes.experts.pick_place import LiftExpert, PlaceExpert, StackExpert
from sim_scenes.experts.push import PushExpert
from sim_scenes.scene import Scene
from sim_scenes.tasks import Instance

# Bumped whenever the experts' behaviour changes, so that one episode store never mixes the
# demonstrations of two versions (`embodied simgen` records it). 2: grips end when the
# fingers stop (`Expert.grip`), not after a fixed wait.
VERSION = 2

EXPERTS: dict[str, type[Expert]] = {"lift": LiftExpert, "push": PushExpert, "place": PlaceExpert, "stack": StackExpert}


def make(task: str, scene: Scene, instance: Instance, pace: float = 1.0) -> Expert:
    if task not in EXPERTS:
        raise UnknownTask(task, sorted(EXPERTS))
    return EXPERTS[task](scene, instance, pace=pace)


__all__ = ["EXPERTS", "VERSION", "Expert", "make"]
