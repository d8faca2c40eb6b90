"""The privileged-state oracle (embodied.eval.oracle): features, chunk targets, fitting, a run."""

from dataclasses import replace

import mujoco
import numpy as np
import pytest
import torch

from embodied.errors import ConfigError
from embodied.eval.oracle import (Oracle, OracleConfig, chunk_targets, demonstration, privileged_features, run_oracle,
                                  with_policy_keypoints)
from embodied.policy.io import Observation
from sim_scenes.env import TaskEnv


def test_chunk_targets_start_at_each_frame_and_pad_with_the_last_action():
    actions = np.arange(10, dtype=np.float32).reshape(5, 2)
    chunks = chunk_targets(actions, 3)
    assert chunks.shape == (5, 3, 2)
    np.testing.assert_array_equal(chunks[1], actions[1:4])
    np.testing.assert_array_equal(chunks[4], actions[[4, 4, 4]])


def test_privileged_features_carry_the_target_and_goal_poses():
    env = TaskEnv("push", "koch", images=False)
    env.reset(seed=3)
    f = privileged_features(env)
    n = env.robot.action_dim
    np.testing.assert_allclose(f[:n], env.scene.state())
    np.testing.assert_allclose(f[n:n + 3], env.scene.body_pos(env.instance.target), atol=1e-6)
    np.testing.assert_allclose(f[-3:], env.scene.body_pos(env.instance.goal), atol=1e-6)
    lift = TaskEnv("lift", "koch", images=False)  # no goal: state, target position, yaw features
    lift.reset(seed=3)
    assert privileged_features(lift).shape == (n + 5,)


def test_scene_features_do_not_reveal_the_roles_by_order():
    """Inputs "scene": one layout with other props named differs only in the instruction's
    colour one-hots (the last two), not in where the props sit in the vector."""
    from sim_scenes.props import COLORS

    env = TaskEnv("push", "koch", images=False)
    env.reset(seed=5, options={"variant": 0})
    a = privileged_features(env, "scene")
    env.reset(seed=5, options={"variant": 1})
    b = privileged_features(env, "scene")
    words = 2 * len(COLORS)
    assert a.shape == b.shape == (env.robot.action_dim + 4 * (5 + len(COLORS)) + words,)
    np.testing.assert_array_equal(a[:-words], b[:-words])
    assert np.any(a[-words:] != b[-words:])
    with pytest.raises(ConfigError, match="unknown oracle inputs"):
        privileged_features(env, "poses")
    with pytest.raises(ConfigError, match="unknown oracle inputs"):
        OracleConfig(inputs="poses")


def test_pixel_features_are_the_named_objects_image_positions():
    """Inputs "pixels": per camera, the target's and goal's normalized image coordinates and
    visible flags; they follow the target when it moves, and lift (no goal) reads the goal as
    absent."""
    env = TaskEnv("push", "koch", images=False)
    env.reset(seed=3)
    n, cams = env.robot.action_dim, [c.name for c in env.robot.cameras]
    f = privileged_features(env, "pixels")
    assert f.shape == (n + 6 * len(cams),)
    per_camera = f[n:].reshape(len(cams), 6)
    for row, cam in zip(per_camera, cams):
        xy = env.role_pixels()[cam]
        np.testing.assert_allclose(row[:4], np.nan_to_num(xy).ravel())
        np.testing.assert_array_equal(row[4:], np.isfinite(xy).all(-1))
    assert per_camera[:, 4].any()  # the target is in view of some camera
    pos = env.scene.body_pos(env.instance.target)
    env.scene.set_pose(env.instance.target, pos + np.array([0.03, 0.02, 0.0]), env.scene.body_yaw(env.instance.target))
    mujoco.mj_forward(env.scene.model, env.scene.data)
    moved = privileged_features(env, "pixels")[n:].reshape(len(cams), 6)
    seen = per_camera[:, 4].astype(bool)
    assert np.abs(moved[seen, :2] - per_camera[seen, :2]).max() > 0.01  # the target's pixels moved
    np.testing.assert_allclose(moved[:, 2:4], per_camera[:, 2:4], atol=1e-6)  # the goal's did not
    lift = TaskEnv("lift", "koch", images=False)
    lift.reset(seed=3)
    g = privileged_features(lift, "pixels")[n:].reshape(len(cams), 6)
    assert not g[:, 5].any() and not g[:, 2:4].any()


def test_oracle_fits_a_demonstration_it_was_given():
    features, actions = demonstration("koch", "push", 0)
    assert len(features) == len(actions) > 16
    chunks = chunk_targets(actions, 8)
    oracle = Oracle(features, actions, chunk=8, width=128)
    loss = oracle.fit(features, chunks, steps=300, batch=64)
    assert loss < 0.2  # normalized L1; an untrained net starts near 0.7
    err = np.abs(oracle.act(features[len(features) // 2]) - chunks[len(features) // 2]) / oracle.sa
    assert err.mean() < 0.3


def test_run_oracle_reports_both_seed_sets():
    cfg = OracleConfig(robot="koch", task="lift", demos=2, steps=20, batch=16, width=32, chunk=4, episodes=2, workers=1)
    report = run_oracle(cfg)
    assert report["new_seeds"]["episodes"] == 2 and report["demo_seeds"]["episodes"] >= 2
    assert 0.0 <= report["new_seeds"]["ci95"][0] <= report["new_seeds"]["rate"] <= report["new_seeds"]["ci95"][1]
    assert report["frames"] > 0 and np.isfinite(report["final_loss"])


def test_policy_keypoints_replace_the_pixels_where_the_simulator_sees_them(grounding_policy):
    policy = grounding_policy
    env = TaskEnv("lift", "so100")
    obs, _ = env.reset(seed=2)
    true = privileged_features(env, "pixels")
    read = with_policy_keypoints(true, env, obs, policy)
    n, cams = len(env.scene.state()), len(env.robot.cameras)
    np.testing.assert_array_equal(read[:n], true[:n])
    blocks, truth = read[n:].reshape(cams, 6), true[n:].reshape(cams, 6)
    np.testing.assert_array_equal(blocks[:, 4:], truth[:, 4:])  # the flags stay the simulator's
    assert not blocks[:, 2:4].any()  # lift has no goal: its position stays 0
    with torch.no_grad():
        keypoints, (_, slots) = policy.locate(policy.observation_batch(
            Observation("so100", obs["instruction"], obs["state"], obs["images"])))
    for slot, k in zip(slots.tolist(), keypoints):
        if truth[slot, 4]:
            np.testing.assert_allclose(blocks[slot, :2], k[0].numpy(), atol=1e-6)
            assert not np.allclose(blocks[slot, :2], truth[slot, :2])  # an untrained policy misses


def test_oracle_with_policy_keypoints_reports_a_second_rate(grounding_policy, tmp_path):
    from embodied.policy import save_checkpoint

    save_checkpoint(grounding_policy, tmp_path / "ckpt")
    with pytest.raises(ConfigError, match="--inputs pixels"):
        OracleConfig(keypoints_from=str(tmp_path / "ckpt"))
    cfg = OracleConfig(robot="so100", task="lift", demos=2, steps=20, batch=16, width=32, chunk=4, episodes=1,
                       workers=1, inputs="pixels", keypoints_from=str(tmp_path / "ckpt"))
    report = run_oracle(cfg)
    assert report["new_seeds_policy_keypoints"]["episodes"] == 1
    assert "new_seeds_policy_keypoints" not in run_oracle(replace(cfg, keypoints_from=""))
