"""Leader-arm teleoperation: a hand-moved leader arm drives a follower arm, joint for joint.

Both arms are `ServoBus`es with their own calibrations, so joint angles [rad] mean the
same on both; joints are matched by name, and the gripper by its opening in [0, 1]. Each
control tick (the follower's `control_hz`) reads the leader, clips the targets to the
follower's calibrated joint range (`clip_targets`), and hands them to a `SafeController`:
the fault monitor checks the follower every tick, applies its graded reactions, limits each
step and logs every event to the black box. While an episode is recorded, the frame is kept.
Saved episodes go to an episode store (`embodied.data.open_robot_store`), as simulated
collection does, with source "teleop":

    observation.state  follower joint positions [rad] (robot.toml joint order) + gripper opening [0, 1]
    action             commanded joint targets [rad] (after clipping) + commanded gripper opening [0, 1]

Both vectors come from the follower's servos through `firmware_bridge.arm.ArmLayout`.
Episode events come from any `InputSource` (`TeleopCommand.events`): a `ScriptedInput` in
tests, `TerminalKeys` on a terminal. Cameras are optional, the deploy loop's
`embodied.deploy.cameras.Camera`s (`OpenCVCamera` where OpenCV is installed), read once per
recorded frame; an `OpenCVCamera` that fails raises `CameraError`. A store records exactly
the cameras it was created with.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

import robots
from embodied.collect.teleop_input import InputSource, TeleopCommand
from embodied.data.episode import Episode
from embodied.data.store import EpisodeStore
from embodied.deploy.cameras import Camera
from embodied.errors import EmbodiedError
from firmware_bridge.arm import ArmLayout
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import ServoCalibration
from firmware_bridge.errors import BridgeError
from firmware_bridge.monitor import BlackBox, SafeController


class TeleopError(EmbodiedError):
    """Leader and follower arms (or a store and cameras) that cannot be paired, or a leader
    reading that gives non-finite follower targets."""


# --- joints ------------------------------------------------------------------------------
def leader_to_follower(leader_rad: np.ndarray, leader: ServoBus, leader_layout: ArmLayout,
                       follower: ServoBus, follower_layout: ArmLayout) -> np.ndarray:
    """Follower servo targets [rad] (its bus order) from leader servo positions [rad]:
    joints matched by name, the gripper by its opening in [0, 1] through both calibrations."""
    targets = np.zeros(len(follower.servos))
    leader_joints = {s.joint: k for k, s in enumerate(leader.servos)}
    for name, k in zip(follower_layout.robot.joint_names, follower_layout.joint_index):
        if name not in leader_joints:
            raise TeleopError(f"the leader arm ({leader_layout.robot.name}) has no joint {name!r} of the follower "
                              f"({follower_layout.robot.name}); leader joints: {list(leader_joints)}")
        targets[k] = leader_rad[leader_joints[name]]
    opening = leader.calibration.servo(leader_layout.robot.gripper.joint).opening(
        float(leader_rad[leader_layout.gripper_index]))
    targets[follower_layout.gripper_index] = follower.calibration.servo(
        follower_layout.robot.gripper.joint).opening_to_radians(opening)
    return targets


def follower_limits(bus: ServoBus, robot: robots.RobotSpec) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest target [rad] per servo (bus order): the robot.toml joint range
    intersected with the calibrated range (robot.toml's alone if they do not overlap);
    the gripper's calibrated range. Both are moved inward to whole servo ticks, so a
    clipped target stays inside after `write_targets` rounds it to ticks."""
    ranges = {j.name: j.range for j in robot.joints}
    lo, hi = np.zeros(len(bus.servos)), np.zeros(len(bus.servos))
    for k, s in enumerate(bus.servos):
        cal = bus.calibration.servo(s.joint)
        cal_lo, cal_hi = cal.range_rad()
        spec_lo, spec_hi = ranges.get(s.joint, (cal_lo, cal_hi))
        a, b = max(spec_lo, cal_lo), min(spec_hi, cal_hi)
        a, b = (a, b) if a < b else (spec_lo, spec_hi)
        lo[k], hi[k] = _on_tick(cal, a, up=True), _on_tick(cal, b, up=False)
    return lo, hi


def _on_tick(cal: ServoCalibration, angle: float, up: bool) -> float:
    """The angle [rad] of the whole tick nearest `angle` on its inner side (above it when `up`)."""
    ticks = cal.to_ticks(angle)
    q = cal.to_radians(ticks, unwrap=False)
    if (q < angle) if up else (q > angle):
        q = cal.to_radians(ticks + (cal.direction if up else -cal.direction), unwrap=False)
    return q


def clip_targets(targets_rad: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one place follower commands are bounded: (targets clipped to [lo, hi] [rad],
    which ones were clipped). Non-finite targets raise `TeleopError` before anything is sent."""
    targets = np.asarray(targets_rad, dtype=float)
    if not np.all(np.isfinite(targets)):
        raise TeleopError(f"non-finite follower targets {targets.tolist()}: the leader reading is broken; "
                          "nothing was sent")
    clipped = np.clip(targets, lo, hi)
    return clipped, clipped != targets


# --- keys ------------------------------------------------------------------------------
class TerminalKeys:
    """Episode keys on a terminal (stdin in cbreak mode, no echo): Enter starts / saves,
    Backspace or d discards, r re-records, q or Esc quits. Use as a context manager."""

    KEYS: Mapping[str, frozenset[str]] = {
        "\n": frozenset({"start", "save"}), "\r": frozenset({"start", "save"}),
        "\x7f": frozenset({"discard"}), "\b": frozenset({"discard"}), "d": frozenset({"discard"}),
        "r": frozenset({"rerecord"}), "q": frozenset({"quit"}), "\x1b": frozenset({"quit"}),
    }

    def __init__(self, stream=sys.stdin):
        self.stream, self._saved = stream, None

    def __enter__(self) -> TerminalKeys:
        import termios
        import tty

        fd = self.stream.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)

    def poll(self) -> TeleopCommand:
        events: set[str] = set()
        fd = self.stream.fileno()
        while select.select([fd], [], [], 0)[0]:
            key = os.read(fd, 1).decode(errors="ignore")
            if not key:
                events.add("quit")  # stdin closed
                break
            events |= self.KEYS.get(key.lower(), frozenset())
        return TeleopCommand(events=frozenset(events))


# --- the loop --------------------------------------------------------------------------
@dataclass
class LeaderSummary:
    saved: int = 0
    discarded: int = 0
    ticks: int = 0
    clipped: int = 0  # ticks on which at least one target was clipped


def teleoperate(leader: ServoBus, follower: ServoBus, follower_robot: robots.RobotSpec,
                leader_robot: robots.RobotSpec, source: InputSource, store: EpisodeStore | None = None,
                task: str = "leader teleoperation", cameras: Mapping[str, Camera] | None = None,
                max_episodes: int | None = None, max_ticks: int | None = None,
                on_status: Callable[[str], None] | None = None, blackbox: BlackBox | None = None) -> LeaderSummary:
    """Drive `follower` from `leader` at the follower's control rate until the source asks
    to quit (or `max_episodes` are saved, or `max_ticks` ticks have run).

    The leader's torque is switched off (it is moved by hand); the follower's on. On the
    way out (quit, error or Ctrl+C) the follower is told to hold where it is; torque is
    left on, so an arm that would fall when limp is not dropped.
    """
    cameras = dict(cameras or {})
    if store is not None and set(store.cameras) != set(cameras):
        raise TeleopError(f"the store records cameras {sorted(store.cameras)}, got {sorted(cameras)}")
    leader_layout, follower_layout = ArmLayout.of(leader, leader_robot), ArmLayout.of(follower, follower_robot)
    lo, hi = follower_limits(follower, follower_robot)
    dt = 1.0 / follower_robot.control_hz
    summary = LeaderSummary()
    frames: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
    recording = False

    def save() -> None:
        states, actions, images = zip(*frames)
        store.append(Episode(np.stack(states), np.stack(actions), (np.arange(len(frames)) * dt).astype(np.float32),
                             {c: np.stack([im[c] for im in images]) for c in cameras}, task=task, success=True,
                             source="teleop"))

    leader.torque(False)
    controller = SafeController(follower, follower_robot, blackbox=blackbox)  # fault monitor on the follower
    controller.start()
    try:
        next_tick = time.perf_counter()
        while max_ticks is None or summary.ticks < max_ticks:
            events = source.poll().events
            if "quit" in events:
                summary.discarded += bool(frames)  # an unsaved episode is dropped, never half-written
                break
            if "rerecord" in events:
                summary.discarded += bool(frames)
                frames.clear()
                recording = True
            elif "discard" in events and recording:
                summary.discarded += 1
                frames.clear()
                recording = False
            elif "save" in events and recording and frames:
                if store is not None:
                    save()
                summary.saved += 1
                frames.clear()
                recording = False
                if max_episodes is not None and summary.saved >= max_episodes:
                    break
            elif "start" in events and not recording:
                recording = True
            leader_state = leader.read_state()
            wanted = leader_to_follower(leader_state.positions, leader, leader_layout, follower, follower_layout)
            targets, clipped = clip_targets(wanted, lo, hi)
            step = controller.step(targets)  # read, check, react; the monitor clips steps and logs every fault
            summary.ticks += 1
            summary.clipped += bool(clipped.any())
            if recording and step.sent is not None and step.state is not None:
                frames.append((follower_layout.observation(follower, step.state.positions),
                               follower_layout.observation(follower, step.sent),
                               {name: cam.read() for name, cam in cameras.items()}))
            if on_status is not None:
                on_status(f"{'REC ' + str(len(frames)) + ' frames' if recording else 'ready (Enter to record)'}"
                          f" | saved {summary.saved}")
            next_tick += dt
            pause = next_tick - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            else:
                next_tick = time.perf_counter()  # late: do not try to catch up
    finally:
        controller.monitor.log("controller", "teleop end", detail="follower holds where it is")
        _hold(follower)
    return summary


def _hold(follower: ServoBus) -> None:
    """Ask the follower to stay where it is; a bus that no longer answers is left alone."""
    try:
        if follower.is_connected:
            follower.write_targets(follower.read_state().positions)
    except BridgeError:  # the original error (if any) matters more
        pass
