"""Deploying a policy bundle to an arm: checks before it moves, the control loop through the
fault monitor, policy and camera faults, black box, timing and recording. numpy +
onnxruntime + pyserial only: never torch (see DESIGN.md).

    >>> from embodied.deploy import DeployConfig, OpenCVCamera, deploy
    >>> robot = robots.load("so100")
    >>> with ServoBus(robot.bus, "/dev/ttyUSB0") as bus:
    ...     summary = deploy(DeployConfig("bundles/so100", "pick up the red cube", seconds=60), robot, bus,
    ...                      {"front": OpenCVCamera(0, (96, 96), "front"), "wrist": OpenCVCamera(2, (96, 96), "wrist")})

The rehearsal against an emulated arm in a MuJoCo scene lives in `embodied.deploy.emulated`
(`run_emulated_episodes`), which imports MuJoCo when called.
"""

from embodied.deploy.cameras import (Camera, CameraRig, FreezeDetector, OpenCVCamera, SimCamera, parse_camera_specs,
                                     sim_cameras)
from embodied.deploy.errors import CameraError, DeployError, PreflightRefused
from embodied.deploy.loop import SCHEDULERS, DeployConfig, Deployment, deploy
from embodied.deploy.policy_faults import PolicyLimits, PolicyWatch
from embodied.deploy.report import EpisodeResult, format_summary, summarize

__all__ = ["SCHEDULERS", "Camera", "CameraError", "CameraRig", "DeployConfig", "DeployError", "Deployment",
           "EpisodeResult", "FreezeDetector", "OpenCVCamera", "PolicyLimits", "PolicyWatch", "PreflightRefused",
           "SimCamera", "deploy", "format_summary", "parse_camera_specs", "sim_cameras", "summarize"]
