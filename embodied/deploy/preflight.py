"""Checks before the arm moves. Each refusal is a `PreflightRefused` that names the problem
and the fix, raised before torque is enabled or any target is written: what a check reads
(the manifest, the ONNX files, one bus state read, one frame per camera, one inference)
never moves a servo.

    bundle       manifest, statistics and every ONNX file match their sha256, and ONNX
                 Runtime loads the graph of the chosen precision (`embodied.runtime`)
    robot        the bundle was exported for this robot, and the bus is this robot's
    instruction  the bundle was exported with the instruction (its embedding is stored)
    cameras      every camera the bundle reads is connected
    bus          the servos answer a state read
    frames       every camera delivers a first frame of the bundle's shape
    policy       a first inference on that observation returns finite actions
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

import robots
from embodied.deploy.cameras import Camera, CameraRig
from embodied.deploy.errors import CameraError, PreflightRefused
from embodied.errors import InvalidInput
from embodied.policy.io import Observation
from embodied.runtime import Bundle, BundleMismatch, CorruptBundle, ObservationRefused, PolicyEngine, load_bundle
from firmware_bridge.errors import BridgeError
from firmware_bridge.monitor import SafeController
from firmware_bridge.pacing import retry
from firmware_bridge.state import BusState


def open_policy(path: str | os.PathLike, robot: robots.RobotSpec, precision: str = "auto",
                threads: int = 1) -> PolicyEngine:
    """The verified bundle at `path`, loaded into ONNX Runtime for `robot` (checks bundle, robot)."""
    if robot.bus is None:
        raise PreflightRefused("robot", f"robot {robot.name!r} has no [bus] in {robot.root / 'robot.toml'}",
                               "describe its servo bus there")
    try:
        bundle = load_bundle(path)
    except (CorruptBundle, BundleMismatch) as e:
        raise PreflightRefused("bundle", str(e)) from e
    if bundle.robot != robot.name:
        raise PreflightRefused("robot", f"bundle {bundle.path} was exported for robot {bundle.robot!r}, this arm is "
                                        f"{robot.name!r}", f"deploy a bundle of {robot.name} (`embodied export "
                                                           f"--robot {robot.name}`)")
    try:
        return PolicyEngine(bundle, precision, threads, robot=robot.name)
    except (CorruptBundle, ObservationRefused) as e:
        raise PreflightRefused("bundle", str(e)) from e


def bundle_robot(path: str | os.PathLike) -> robots.RobotSpec:
    """The robot a bundle was exported for (the bundle verified on the way)."""
    try:
        return robots.load(load_bundle(path).robot)
    except (CorruptBundle, BundleMismatch) as e:
        raise PreflightRefused("bundle", str(e)) from e


def check_instruction(bundle: Bundle, instruction: str) -> None:
    if instruction not in bundle.instructions:
        raise PreflightRefused("instruction", f"{instruction!r} was not exported with bundle {bundle.path}; it serves "
                                              f"{bundle.instructions}",
                               f"use one of those, or export again with --instructions {instruction!r}")


def check_cameras(bundle: Bundle, cameras: Mapping[str, Camera]) -> None:
    missing = [c for c in bundle.cameras if c not in cameras]
    if missing:
        raise PreflightRefused("cameras", f"the bundle reads cameras {bundle.cameras}; {missing} not connected "
                                          f"(connected: {sorted(cameras)})",
                               "pass --camera NAME=SOURCE for each of them (a device index or path)")


def check_bus(controller: SafeController, robot: robots.RobotSpec) -> BusState:
    """The bus of `controller` is `robot`'s and answers; returns its state."""
    bus = controller.bus
    if controller.robot.name != robot.name or tuple(bus.servos) != tuple(robot.bus.servos):
        joints = [f"{s.joint}:{s.id}" for s in bus.servos]
        raise PreflightRefused("robot", f"the bus on {bus.port} (servos {joints}, robot {controller.robot.name!r}) "
                                        f"is not {robot.name}'s ({[f'{s.joint}:{s.id}' for s in robot.bus.servos]})",
                               f"open the port with {robot.name}'s [bus] spec, or deploy a bundle of this arm")
    try:
        return retry(bus.read_state)  # a lost reply is asked again; a silent bus is refused
    except BridgeError as e:
        raise PreflightRefused("bus", f"the servos on {bus.port} do not answer a state read ({e})",
                               "check power, cabling and the port; `embodied robots show` lists the servo ids") from e


def first_frames(rig: CameraRig, pose: np.ndarray) -> dict[str, np.ndarray]:
    try:
        return rig.read(pose)
    except CameraError as e:
        raise PreflightRefused("frames", str(e), "check the camera's cable, index or path, and its resolution") from e


def first_inference(engine: PolicyEngine, obs: Observation) -> None:
    """One inference before the arm moves: it warms ONNX Runtime up, and a graph that fails
    or returns non-finite actions is refused here rather than at the first tick."""
    try:
        actions = engine.infer(obs).actions
    except (ObservationRefused, InvalidInput) as e:
        raise PreflightRefused("policy", str(e)) from e
    if not np.isfinite(actions).all():
        raise PreflightRefused("policy", f"the first inference of {engine.bundle.path} returned "
                                         f"{int((~np.isfinite(actions)).sum())} non-finite actions",
                               "check the bundle's normalization statistics and export it again")
