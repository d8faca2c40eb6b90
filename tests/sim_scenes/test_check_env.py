"""gymnasium's env checker over every robot x task."""

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import robots
import sim_scenes

CASES = [(r, t) for r in robots.available() for t in sim_scenes.tasks.available()]


def test_one_id_per_task():
    ids = {sim_scenes.env_id(t) for t in sim_scenes.tasks.available()}
    assert ids == {"embodied/Lift-v0", "embodied/Push-v0", "embodied/Place-v0", "embodied/Stack-v0"}
    assert ids <= set(gym.registry)


@pytest.mark.parametrize("robot,task", CASES, ids=[f"{r}-{t}" for r, t in CASES])
def test_check_env(robot, task):
    env = gym.make(sim_scenes.env_id(task), robot=robot, render_mode="rgb_array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # advisory warnings (unbounded state box, non-normalized actions)
            check_env(env.unwrapped)
        obs, info = env.reset(seed=3)
        assert env.observation_space.contains(obs)
        assert env.unwrapped.robot.name == robot and env.unwrapped.task.name == task
    finally:
        env.close()
