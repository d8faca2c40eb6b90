"""Task registry: name -> Task class. Registering a name twice is an error."""

from __future__ import annotations

from sim_scenes.errors import SimScenesError, UnknownTask
from sim_scenes.tasks.base import Instance, Task
from sim_scenes.tasks.lift import Lift
from sim_scenes.tasks.place import Place
from sim_scenes.tasks.push import Push
from sim_scenes.tasks.stack import Stack

TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    if cls.name in TASKS:
        raise SimScenesError(f"task {cls.name!r} is already registered by {TASKS[cls.name].__qualname__}")
    TASKS[cls.name] = cls
    return cls


for _cls in (Lift, Push, Place, Stack):
    register(_cls)


def get(name: str) -> type[Task]:
    if name not in TASKS:
        raise UnknownTask(name, sorted(TASKS))
    return TASKS[name]


def available() -> list[str]:
    return list(TASKS)


__all__ = ["Instance", "TASKS", "Task", "available", "get", "register"]
