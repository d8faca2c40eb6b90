"""Robots known to embodied: one folder per robot (robot.toml + MJCF model + notes).

    >>> import robots
    >>> robots.available()
    ['koch', 'panda', 'so100', 'ur5e', 'vx300s']
    >>> spec = robots.load("so100")
"""

from robots.errors import ModelMismatch, RobotsError, SpecError, UnknownRobot
from robots.registry import available, load
from robots.spec import BusSpec, CameraSpec, GripperSpec, JointSpec, RobotSpec, ServoSpec, WorkspaceSpec

__all__ = [
    "BusSpec", "CameraSpec", "GripperSpec", "JointSpec", "ModelMismatch", "RobotSpec", "RobotsError",
    "ServoSpec", "SpecError", "UnknownRobot", "WorkspaceSpec", "available", "load",
]
