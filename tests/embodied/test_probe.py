"""The per-chunk probe of policy episodes (embodied.eval.probe)."""

import numpy as np

from embodied.eval.policy_rollout import TorchPolicy
from embodied.eval.probe import GRASP_GAP, GraspWatch, ee_offset_mm, finger_gap, probe_episode
from sim_scenes.env import TaskEnv
from sim_scenes.experts import make as make_expert


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


def test_grasp_watch_records_where_the_fingers_closed_on_a_grasp():
    """Fingers closed slowly in place: the record is the step the gap first fell below
    GRASP_GAP cube edges, with the end-effector's offset at that step; while open, none."""
    env = TaskEnv("lift", "so100")
    obs, _ = env.reset(seed=3)
    watch, edge = GraspWatch(env), env.robot.workspace.object_size
    pregrasp = make_expert("lift", env.scene, env.instance).gap_command(1.6 * edge)  # the experts' approach
    for _ in range(5):
        env.step(np.append(obs["state"][:-1], pregrasp))
        watch.update()
    assert watch.grasp is None
    assert abs(finger_gap(env) / edge - 1.6) < 0.1  # the gap the expert asked for, measured
    gaps, offsets = [], []
    while watch.grasp is None and watch.steps < 200:
        env.step(np.append(obs["state"][:-1], max(0.0, pregrasp - 0.03 * (watch.steps - 4))))
        watch.update()
        gaps.append(finger_gap(env))
        offsets.append(ee_offset_mm(env))
    assert watch.grasp is not None, "the fingers never closed below the grasp gap"
    first = next(i for i, g in enumerate(gaps) if g < GRASP_GAP * edge)
    assert watch.grasp["step"] == 5 + first + 1 and first > 0  # closing takes more than one step
    np.testing.assert_allclose(watch.grasp["offset_mm"], offsets[first], atol=0.06)
    env.step(np.append(obs["state"][:-1], 0.0))
    watch.update()
    assert watch.grasp["step"] == 5 + first + 1  # the first closing is kept
