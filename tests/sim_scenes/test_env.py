"""sim_scenes.env.TaskEnv: observations, seeding, stepping, rendering, errors."""

import numpy as np
import pytest

import robots
from sim_scenes import UnknownTask, experts, tasks
from sim_scenes.env import VIDEO_SIZE, TaskEnv


@pytest.fixture(scope="module")
def lift_envs():
    envs = {r: TaskEnv("lift", robot=r, render_mode="rgb_array") for r in robots.available()}
    yield envs
    for e in envs.values():
        e.close()


def prop_poses(env):
    return {p: (env.scene.body_pos(p), env.scene.body_yaw(p)) for p in env.scene.props}


@pytest.mark.parametrize("robot", robots.available())
def test_observation_layout(lift_envs, robot):
    env = lift_envs[robot]
    obs, info = env.reset(seed=0)
    spec = env.robot
    assert set(obs) == {"state", "images", "instruction"}
    assert obs["state"].shape == (spec.action_dim,) and obs["state"].dtype == np.float32
    np.testing.assert_allclose(obs["state"][:-1], spec.home, atol=1e-6)
    assert obs["state"][-1] == pytest.approx(1.0)  # gripper open at reset
    assert set(obs["images"]) == {c.name for c in spec.cameras}
    for cam in spec.cameras:
        img = obs["images"][cam.name]
        assert img.shape == (cam.height, cam.width, 3) and img.dtype == np.uint8
        assert img.std() > 5  # a real picture, not a blank buffer
    inst = env.instance
    assert isinstance(obs["instruction"], str) and obs["instruction"] == inst.instruction == info["instruction"]
    assert inst.colors[inst.target] in obs["instruction"]
    assert inst.noun(inst.target) in obs["instruction"]
    assert info["success"] is False
    assert env.observation_space.contains(obs)


def test_same_seed_same_episode(lift_envs):
    env = lift_envs["so100"]
    obs_a, _ = env.reset(seed=123)
    poses_a, inst_a = prop_poses(env), env.instance
    env.reset(seed=7)
    obs_b, _ = env.reset(seed=123)
    assert obs_b["instruction"] == obs_a["instruction"] and env.instance == inst_a
    np.testing.assert_array_equal(obs_b["state"], obs_a["state"])
    for p, (pos, yaw) in prop_poses(env).items():
        np.testing.assert_array_equal(pos, poses_a[p][0])
        assert yaw == poses_a[p][1]
    for cam in obs_a["images"]:
        np.testing.assert_array_equal(obs_b["images"][cam], obs_a["images"][cam])


def test_different_seeds_different_layouts(lift_envs):
    env = lift_envs["so100"]
    layouts = []
    for seed in range(5):
        env.reset(seed=seed)
        layouts.append(np.concatenate([pos[:2] for pos, _ in prop_poses(env).values()]))
    for i in range(len(layouts)):
        for j in range(i):
            assert np.max(np.abs(layouts[i] - layouts[j])) > 1e-3, (i, j)
    # objects lie inside the workspace, resting on the table
    w = env.robot.workspace
    lo, hi = np.subtract(w.center, np.divide(w.size, 2)), np.add(w.center, np.divide(w.size, 2))
    for pos, _ in prop_poses(env).values():
        assert np.all(pos[:2] >= lo - 1e-9) and np.all(pos[:2] <= hi + 1e-9)
        assert pos[2] == pytest.approx(w.object_size / 2)


def test_render_frame(lift_envs):
    env = lift_envs["koch"]
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3) and frame.dtype == np.uint8
    assert frame.std() > 5
    env.step(np.append(env.robot.home, 0.0))
    assert env.render().shape == frame.shape


def test_render_without_mode_returns_none():
    env = TaskEnv("lift", robot="so100", images=False)
    env.reset(seed=0)
    assert env.render() is None
    obs, _ = env.reset(seed=0)
    assert "images" not in obs and "images" not in env.observation_space.spaces


def test_step_clips_actions_and_truncates():
    env = TaskEnv("lift", robot="so100", images=False)
    env.reset(seed=0)
    hi = env.action_space.high
    obs, reward, terminated, truncated, info = env.step(hi + 10.0)
    np.testing.assert_allclose(env.scene.data.ctrl[env.scene._arm_act], hi[:-1], atol=1e-6)
    assert env.scene.data.ctrl[env.scene._grip_act] == pytest.approx(env.robot.gripper.open)
    assert reward == 0.0 and terminated is False and truncated is False
    env.reset(seed=0)
    hold = np.append(env.robot.home, 1.0).astype(np.float32)
    assert env.max_steps == round(env.task.time_limit * env.robot.control_hz)
    for t in range(1, env.max_steps + 1):
        _, reward, terminated, truncated, info = env.step(hold)
        assert terminated is False and reward == 0.0
        assert truncated == (t == env.max_steps)
    assert env.scene.data.time == pytest.approx(env.task.time_limit, abs=1e-6)


def test_control_period():
    env = TaskEnv("lift", robot="ur5e", images=False)
    assert env.scene.control_dt == pytest.approx(1.0 / env.robot.control_hz)
    assert env.metadata["render_fps"] == env.robot.control_hz


def test_unknown_task_suggests():
    with pytest.raises(UnknownTask, match="Did you mean 'lift'"):
        tasks.get("lfit")
    with pytest.raises(UnknownTask, match="Did you mean 'stack'"):
        TaskEnv("stak", robot="so100")
    env = TaskEnv("lift", robot="so100", images=False)
    env.reset(seed=0)
    with pytest.raises(UnknownTask, match="Did you mean 'place'"):
        experts.make("plce", env.scene, env.instance)


def test_unknown_instruction_set():
    with pytest.raises(ValueError, match="heldout"):
        TaskEnv("lift", robot="so100", instruction_set="test", images=False)


def test_unknown_robot_from_env():
    with pytest.raises(robots.UnknownRobot, match="so100"):
        TaskEnv("lift", robot="so10")
