"""Errors raised by `embodied.deploy` (no torch here).

    EmbodiedError
    └── DeployError             the deploy loop: an invalid configuration
        ├── PreflightRefused        a check before the arm moves failed; nothing was written to the
        │                           servos and torque was left as it was
        └── CameraError             a camera that cannot be opened, fails, times out or froze

Bundle problems found by the torch-free runtime (`CorruptBundle`, `BundleMismatch`,
`ObservationRefused`) reach the caller as `PreflightRefused`, chained to the original.
"""

from __future__ import annotations

from embodied.errors import EmbodiedError


class DeployError(EmbodiedError):
    pass


class PreflightRefused(DeployError):
    """A deployment refused before the arm moved.

    Args:
        check: which check refused ("bundle", "robot", "bus", "cameras", "instruction",
            "frames", "policy").
        problem: what was expected and what was found.
        fix: what to do about it.
    """

    def __init__(self, check: str, problem: str, fix: str = ""):
        self.check = check
        super().__init__(f"refused before the arm moved ({check}): {problem}" + (f". Fix: {fix}" if fix else ""))


class CameraError(DeployError):
    """A camera fault. `camera` names it."""

    def __init__(self, camera: str, problem: str):
        self.camera = camera
        super().__init__(f"camera {camera!r}: {problem}")
