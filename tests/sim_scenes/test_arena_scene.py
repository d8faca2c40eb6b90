"""sim_scenes.arena and sim_scenes.scene: timing, cameras, table, robot state and contacts."""

import mujoco
import numpy as np
import pytest

import robots
from sim_scenes import tasks
from sim_scenes.arena import TIMESTEP, look_at_xyaxes, physics_steps_per_control
from sim_scenes.scene import build_scene

NAMES = robots.available()


@pytest.fixture(scope="module")
def scenes():
    out = {}
    for n in NAMES:
        spec = robots.load(n)
        task = tasks.get("stack")(spec)
        scene = build_scene(spec, task)
        scene.reset_robot(np.array(spec.home))
        task.reset(scene, np.random.default_rng(0))
        mujoco.mj_forward(scene.model, scene.data)
        out[n] = (spec, task, scene)
    return out


@pytest.mark.parametrize("hz", [15.0, 20.0, 25.0, 30.0, 50.0, 7.0])
def test_physics_steps_per_control(hz):
    n, dt = physics_steps_per_control(hz)
    assert isinstance(n, int) and n >= 1
    assert n * dt == pytest.approx(1.0 / hz, rel=1e-12)
    assert dt <= TIMESTEP + 1e-12


@pytest.mark.parametrize("pos,lookat", [([1, 0, 1], [0, 0, 0]), ([0.2, 0.5, 0.3], [0.1, 0, 0]), ([0.3, 0, 1], [0.3, 0, 0])])
def test_look_at_xyaxes_orthonormal(pos, lookat):
    ax = np.array(look_at_xyaxes(pos, lookat)).reshape(2, 3)
    np.testing.assert_allclose(ax @ ax.T, np.eye(2), atol=1e-12)
    forward = -np.cross(ax[0], ax[1])  # cameras look along -z
    expect = np.subtract(lookat, pos) / np.linalg.norm(np.subtract(lookat, pos))
    np.testing.assert_allclose(forward, expect, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_scene_cameras_look_at_target_and_table_at_zero(scenes, name):
    spec, _, scene = scenes[name]
    m, d = scene.model, scene.data
    for cam in spec.cameras:
        if cam.mount == "scene":
            c = d.camera(cam.name)
            np.testing.assert_allclose(c.xpos, cam.pos, atol=1e-9)
            forward = -c.xmat.reshape(3, 3)[:, 2]
            expect = np.subtract(cam.lookat, cam.pos)
            np.testing.assert_allclose(forward, expect / np.linalg.norm(expect), atol=1e-6)
    assert m.camera("overview").id >= 0
    table = m.geom("table")
    assert table.pos[2] + table.size[2] == pytest.approx(0.0)
    assert scene.control_dt == pytest.approx(1.0 / spec.control_hz)


@pytest.mark.parametrize("name", NAMES)
def test_state_layout_and_reset_robot(scenes, name):
    spec, _, scene = scenes[name]
    q = np.array([0.8 * j.home + 0.2 * (j.range[0] + j.range[1]) / 2 for j in spec.joints])
    scene.reset_robot(q, gripper=0.0)
    mujoco.mj_forward(scene.model, scene.data)
    state = scene.state()
    assert state.dtype == np.float32 and state.shape == (spec.action_dim,)
    np.testing.assert_allclose(state[:-1], q, atol=1e-6)
    assert state[-1] == pytest.approx(0.0, abs=1e-6)  # fingers closed as asked
    np.testing.assert_allclose(scene.data.ctrl[scene._arm_act], q)
    scene.reset_robot(np.array(spec.home), gripper=1.0)
    mujoco.mj_forward(scene.model, scene.data)
    assert scene.state()[-1] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_touching_robot_detects_finger_contact(scenes, name):
    spec, task, scene = scenes[name]
    m, d = scene.model, scene.data
    scene.reset_robot(np.array(spec.home))
    task.reset(scene, np.random.default_rng(0))
    mujoco.mj_forward(m, d)
    assert not scene.touching_robot("cube0")
    finger = m.body(m.jnt_bodyid[m.joint(spec.gripper.joint).id]).id
    geom = next(g for g in range(m.ngeom) if m.geom_bodyid[g] == finger and m.geom_contype[g])
    scene.set_pose("cube0", d.geom_xpos[geom].copy(), 0.0)  # cube overlapping a finger
    mujoco.mj_forward(m, d)
    assert d.ncon > 0
    assert scene.touching_robot("cube0")
    assert not scene.touching_robot("cube1")
