"""Menagerie-style stability test: every robot's lift scene steps 1 s under small random
control noise around home with no MuJoCo warning and no NaN."""

import mujoco
import numpy as np
import pytest

import robots
from sim_scenes import tasks
from sim_scenes.scene import build_scene


@pytest.mark.parametrize("name", robots.available())
def test_scene_steps_one_second_under_noise(name):
    spec = robots.load(name)
    task = tasks.get("lift")(spec)
    scene = build_scene(spec, task)
    m, d = scene.model, scene.data
    rng = np.random.default_rng(0)
    scene.reset_robot(np.array(spec.home))
    task.reset(scene, rng)
    mujoco.mj_forward(m, d)
    cubes0 = {p: scene.body_pos(p) for p in scene.props}
    home = np.append(spec.home, 1.0)
    lo = np.array([j.range[0] for j in spec.joints] + [0.0])
    hi = np.array([j.range[1] for j in spec.joints] + [1.0])
    steps = int(round(spec.control_hz))
    for _ in range(steps):
        scene.apply_action(np.clip(home + rng.normal(0.0, 0.05, home.shape), lo, hi))
        scene.step()
    assert d.time == pytest.approx(1.0, abs=1e-9)
    assert [int(w.number) for w in d.warning] == [0] * len(d.warning)
    assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel)) and np.all(np.isfinite(d.qacc))
    # the arm stayed near home and the untouched cubes rest where they were put
    assert np.max(np.abs(scene.arm_q() - np.array(spec.home))) < 0.3
    for p, pos in cubes0.items():
        np.testing.assert_allclose(scene.body_pos(p), pos, atol=2e-3)
