"""The per-chunk probe of policy episodes (embodied.eval.probe)."""

import numpy as np

from embodied.eval.policy_rollout import TorchPolicy
from embodied.eval.probe import probe_episode
from sim_scenes.env import TaskEnv


def test_probe_records_each_chunk_from_where_the_episode_starts(grounding_policy):
    env = TaskEnv("lift", "so100")
    report = probe_episode(TorchPolicy(grounding_policy), env, seed=4)
    chunks = report["chunks"]
    assert not report["success"] and len(chunks) >= 2
    env.reset(seed=4)  # the first chunk is asked for in the reset scene
    start = (env.scene.data.site(env.robot.ee_site).xpos - env.scene.body_pos(env.instance.target)) * 1000.0
    np.testing.assert_allclose(chunks[0]["offset_mm"], start, atol=0.06)
    assert chunks[0]["opening"] == round(env.scene.gripper_opening(), 3)
    assert report["closest_xy_mm"] == round(min(np.hypot(*c["offset_mm"][:2]) for c in chunks), 1)
    cameras = {c.name for c in env.robot.cameras}
    for c in chunks:
        assert set(c["keypoint_px"]) == set(c["goal_keypoint_px"]) == cameras
        assert all(np.isnan(e) or e >= 0 for e in c["keypoint_px"].values())
        assert all(np.isnan(e) for e in c["goal_keypoint_px"].values()) and c["to_goal_mm"] == []  # lift: no goal
    assert any(c["offset_mm"] != chunks[0]["offset_mm"] for c in chunks[1:])  # the arm moved


def test_probe_follows_the_goal_of_a_task_that_has_one(grounding_policy):
    """place: the target's offset from the named bin, and keypoint 1's error from the bin."""
    env = TaskEnv("place", "so100")
    report = probe_episode(TorchPolicy(grounding_policy), env, seed=2)
    first = report["chunks"][0]
    env.reset(seed=2)
    start = (env.scene.body_pos(env.instance.target) - env.scene.body_pos(env.instance.goal)) * 1000.0
    np.testing.assert_allclose(first["to_goal_mm"], start, atol=0.06)
    assert any(np.isfinite(e) and e >= 0 for e in first["goal_keypoint_px"].values())
