"""Teleoperated demonstrations in simulation: end-effector control through IK.

The operator moves the gripper (top-down, with yaw) and opens or closes it; an episode is
started, saved, discarded or re-recorded with keys. Saved episodes go to the same episode
store as simulated collection, with source "teleop".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embodied.collect.teleop_input import InputSource, TeleopCommand
from embodied.data.episode import Episode
from embodied.data.store import EpisodeStore
from sim_scenes.env import TaskEnv
from sim_scenes.experts.base import top_down
from sim_scenes.experts.ik import DifferentialIK
from sim_scenes.scene import Scene


class EndEffectorController:
    """Integrates velocity commands into a top-down ee target kept inside a box around the
    workspace, and solves IK for joint targets."""

    def __init__(self, scene: Scene, yaw_rate: float = 1.5):
        robot = scene.robot
        self.scene, self.robot = scene, robot
        self.ik = DifferentialIK(scene.model, robot.joint_names, robot.ee_site, np.array(robot.home))
        self.speed = 0.3 * robot.reach  # [m/s] at full deflection
        self.yaw_rate = yaw_rate  # [rad/s] at full deflection
        ws, s = robot.workspace, robot.workspace.object_size
        half = np.asarray(ws.size) / 2 + s
        self.lo = np.array([*(np.asarray(ws.center) - half), s / 2])
        self.hi = np.array([*(np.asarray(ws.center) + half), 6 * s])
        self.reset()

    def reset(self) -> None:
        self.q = self.scene.arm_q()
        pos, rot = self.ik.forward(self.q)
        self.pos = np.clip(pos, self.lo, self.hi)
        self.yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        self.gripper = 1.0

    def update(self, cmd: TeleopCommand, dt: float) -> np.ndarray:
        """Action (joint targets [rad], gripper [0, 1]) after one tick of `dt` [s]."""
        self.pos = np.clip(self.pos + self.speed * dt * np.asarray(cmd.velocity, float), self.lo, self.hi)
        self.yaw += self.yaw_rate * dt * cmd.yaw_rate
        if cmd.gripper is not None:
            self.gripper = float(np.clip(cmd.gripper, 0.0, 1.0))
        self.q = self.ik.solve(self.q, self.pos, top_down(self.yaw), iterations=15).q
        return np.append(self.q, self.gripper).astype(np.float32)


class Display(Protocol):
    def show(self, images: dict[str, np.ndarray], status: str) -> None: ...


class PygameDisplay:
    """The robot's cameras side by side, upscaled, with a status line."""

    def __init__(self, scale: int = 4):
        import pygame

        self.pg, self.scale, self.screen = pygame, scale, None
        pygame.init()
        self.font = pygame.font.Font(None, 22)

    def show(self, images: dict[str, np.ndarray], status: str) -> None:
        pg = self.pg
        row = np.concatenate([np.kron(im, np.ones((self.scale, self.scale, 1), np.uint8)) for im in images.values()], axis=1)
        if self.screen is None:
            self.screen = pg.display.set_mode((row.shape[1], row.shape[0] + 28))
            pg.display.set_caption("embodied record: Enter start/save, Backspace discard, R re-record, Esc quit")
        self.screen.fill((20, 20, 20))
        self.screen.blit(pg.surfarray.make_surface(row.swapaxes(0, 1)), (0, 0))
        self.screen.blit(self.font.render(status, True, (230, 230, 230)), (6, row.shape[0] + 6))
        pg.display.flip()


@dataclass
class RecordSummary:
    saved: int = 0
    discarded: int = 0


def record(env: TaskEnv, source: InputSource, store: EpisodeStore, display: Display | None = None,
           realtime: bool = True, max_episodes: int | None = None, first_seed: int = 0) -> RecordSummary:
    """Run the teleoperation loop until the source asks to quit (or `max_episodes` are saved)."""
    summary, seed = RecordSummary(), first_seed
    obs, _ = env.reset(seed=seed)
    ctrl = EndEffectorController(env.scene)
    dt = env.scene.control_dt
    buffer: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = []
    recording, success = False, False

    def restart(new_seed: int):
        nonlocal obs, recording, success
        obs, _ = env.reset(seed=new_seed)
        ctrl.reset()
        buffer.clear()
        recording, success = False, False

    while True:
        tick = time.perf_counter()
        cmd = source.poll()
        if "quit" in cmd.events:
            summary.discarded += bool(buffer)  # an unsaved episode is dropped on quit, never half-written
            break
        if "rerecord" in cmd.events:
            summary.discarded += bool(buffer)
            restart(seed)
            recording = True
        elif "discard" in cmd.events and recording:
            summary.discarded += 1
            seed += 1
            restart(seed)
        elif "save" in cmd.events and recording and buffer:
            states, images, actions = zip(*buffer)
            store.append(Episode(np.stack(states), np.stack(actions), (np.arange(len(actions)) * dt).astype(np.float32),
                                 {c: np.stack([im[c] for im in images]) for c in images[0]},
                                 task=env.instance.instruction, success=success, source="teleop", seed=seed))
            summary.saved += 1
            if max_episodes is not None and summary.saved >= max_episodes:
                break
            seed += 1
            restart(seed)
        elif "start" in cmd.events and not recording:
            recording = True
        action = ctrl.update(cmd, dt)
        if recording:
            buffer.append((obs["state"], obs["images"], action))
        obs, _, _, _, info = env.step(action)  # the operator decides when an episode ends
        success = success or (recording and info["success"])
        if display is not None:
            mode = f"REC {len(buffer)} frames" if recording else "ready (Enter to record)"
            display.show(obs["images"], f"{mode} | saved {summary.saved} | {env.instance.instruction}"
                                        f"{' | SUCCESS' if success else ''}")
        if realtime:
            time.sleep(max(0.0, dt - (time.perf_counter() - tick)))
    return summary
