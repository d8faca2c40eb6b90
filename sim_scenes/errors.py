"""Errors raised by `sim_scenes`.

    SimScenesError
    ├── UnknownTask            a task name that is not registered
    ├── UnreachableWorkspace   an IK target in the robot's workspace the arm cannot reach
    ├── InvalidPace            an expert speed factor outside its range
    ├── InvalidSettle          a time recorded after success outside its range
    ├── InvalidCameraJitter    a scene-camera randomization outside [0, 1]
    ├── UnknownVariant         a role variant outside the task's range
    └── PlacementError         objects that do not fit in the workspace
"""

from __future__ import annotations

import difflib


class SimScenesError(Exception):
    """Root of every error raised by `sim_scenes`."""


class UnknownTask(SimScenesError, KeyError):
    def __init__(self, name: str, available: list[str]):
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown task {name!r}.{hint} Known tasks: {', '.join(available)}.")

    def __str__(self) -> str:
        return self.args[0]


class UnreachableWorkspace(SimScenesError, ValueError):
    def __init__(self, robot: str, toml: str, target, error_m: float):
        super().__init__(
            f"{toml}: field 'workspace': robot {robot!r} cannot reach {list(map(lambda v: round(float(v), 3), target))} "
            f"top-down (IK error {1000 * error_m:.1f} mm). Fix: move workspace.center toward the base "
            "or shrink workspace.size until every corner is reachable."
        )


class InvalidPace(SimScenesError, ValueError):
    LOWEST, HIGHEST = 0.05, 4.0

    @classmethod
    def check(cls, pace: float) -> float:
        """`pace`, or InvalidPace when it lies outside [LOWEST, HIGHEST]."""
        if not cls.LOWEST <= pace <= cls.HIGHEST:
            raise cls(f"expert pace {pace} is outside [{cls.LOWEST}, {cls.HIGHEST}]; 1 is the default speed, "
                      "0.5 half as fast")
        return pace


class InvalidSettle(SimScenesError, ValueError):
    HIGHEST = 5.0  # [s]

    @classmethod
    def check(cls, settle: float) -> float:
        """`settle` [s], or InvalidSettle when it lies outside [0, HIGHEST]."""
        if not 0.0 <= settle <= cls.HIGHEST:
            raise cls(f"settle time {settle} s is outside [0, {cls.HIGHEST}]; 0 ends a demonstration at success, "
                      "0.5 records half a second more")
        return settle


class InvalidCameraJitter(SimScenesError, ValueError):
    @classmethod
    def check(cls, jitter: float) -> float:
        """`jitter`, or InvalidCameraJitter when it lies outside [0, 1]."""
        if not 0.0 <= jitter <= 1.0:
            raise cls(f"camera jitter {jitter} is outside [0, 1]; 0 keeps the cameras of robot.toml, 1 moves them "
                      "the most (sim_scenes.camera.jittered_view)")
        return jitter


class UnknownVariant(SimScenesError, ValueError):
    """A role variant outside 0..n-1 for a task with n (`Task.role_variants`)."""


class PlacementError(SimScenesError, RuntimeError):
    pass

