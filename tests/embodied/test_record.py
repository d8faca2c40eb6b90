"""Teleoperation: the recording state machine driven by scripted input, and the keyboard mapping."""


import numpy as np
import pytest

from embodied.collect.record import EndEffectorController, record
from embodied.collect.teleop_input import KeyboardInput, ScriptedInput, TeleopCommand
from embodied.data import EpisodeStore, open_robot_store
from sim_scenes.env import TaskEnv

import robots


def cmd(velocity=(0, 0, 0), gripper=None, events=()):
    return TeleopCommand(velocity, 0.0, gripper, frozenset(events))


def test_scripted_session_saves_discards_and_rerecords(tmp_path):
    env = TaskEnv("lift", "so100", images=True)
    robot = robots.load("so100")
    store = open_robot_store(tmp_path / "teleop.zarr", robot, {c.name: (c.height, c.width) for c in robot.cameras})
    script = ([cmd(events=("start",))] + [cmd((0, 0, -1))] * 20 + [cmd(gripper=0.0)] * 5 + [cmd((0, 0, 1))] * 10
              + [cmd(events=("save",))]  # episode 1 saved: 36 frames
              + [cmd(events=("start",))] + [cmd((1, 0, 0))] * 5 + [cmd(events=("discard",))]
              + [cmd(events=("rerecord",))] + [cmd((0, 1, 0))] * 7 + [cmd(events=("save",))]  # episode 2: 8 frames
              + [cmd(events=("start",))] + [cmd()] * 3)  # unsaved when the script quits
    summary = record(env, ScriptedInput(script), store, realtime=False)
    assert (summary.saved, summary.discarded) == (2, 2)
    s = EpisodeStore.open(tmp_path / "teleop.zarr")
    assert s.num_episodes == 2 and [s.episode_meta(i)["length"] for i in range(2)] == [36, 8]
    ep = s.episode(0)
    assert ep.source == "teleop" and "cube" in ep.task
    assert ep.action[-1, -1] == 0.0 and ep.action[0, -1] == 1.0  # gripper closed during the episode
    assert ep.state[25, 2] != pytest.approx(ep.state[0, 2], abs=1e-3)  # the arm moved
    assert s.episode_meta(1)["seed"] == s.episode_meta(0)["seed"] + 2  # discard moved on, re-record kept the scene


def test_controller_keeps_the_target_in_the_workspace_box():
    env = TaskEnv("lift", "koch", images=False)
    env.reset(seed=0)
    ctrl = EndEffectorController(env.scene)
    for _ in range(200):
        action = ctrl.update(cmd((1, 1, -1)), env.scene.control_dt)
    assert np.all(ctrl.pos <= ctrl.hi + 1e-9) and np.all(ctrl.pos >= ctrl.lo - 1e-9)
    assert env.action_space.contains(np.clip(action, env.action_space.low, env.action_space.high))
    pos, _ = ctrl.ik.forward(ctrl.q)
    assert np.linalg.norm(pos - ctrl.pos) < 5e-3  # the corner of the box is reachable


def test_keyboard_mapping(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    kb = KeyboardInput()
    pygame.display.set_mode((8, 8))
    for key in (pygame.K_RETURN, pygame.K_SPACE):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))
    c = kb.poll()
    assert {"start", "save"} <= c.events and c.gripper == 0.0 and c.velocity == (0.0, 0.0, 0.0)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    assert "quit" in kb.poll().events
    pygame.quit()
