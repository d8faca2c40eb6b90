"""Errors raised by the `robots` package.

    RobotsError
    ├── UnknownRobot     a name that no robot folder provides
    ├── SpecError        a robot.toml that is missing a field or contradicts itself
    └── ModelMismatch    a robot.toml and its MJCF model that disagree
"""

from __future__ import annotations

import difflib


class RobotsError(Exception):
    """Root of every error raised by `robots`."""


class UnknownRobot(RobotsError, KeyError):
    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = available
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"unknown robot {name!r}.{hint} Known robots: {', '.join(available)}. "
            "To add one, create robots/<name>/robot.toml or pass the path of a robot folder."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class SpecError(RobotsError, ValueError):
    """A robot.toml field is missing, has the wrong type, or contradicts another field."""

    def __init__(self, path: str, field: str, problem: str, fix: str):
        self.path, self.field = path, field
        super().__init__(f"{path}: field '{field}': {problem}. Fix: {fix}")


class ModelMismatch(RobotsError, ValueError):
    """robot.toml and the MJCF model it points to disagree."""

    def __init__(self, path: str, field: str, problem: str, fix: str):
        self.path, self.field = path, field
        super().__init__(f"{path}: field '{field}': {problem}. Fix: {fix}")
