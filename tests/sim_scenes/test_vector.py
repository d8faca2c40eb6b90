"""Vectorized envs through gymnasium.make_vec.

Two kwargs are needed (see the report):
- context="spawn": forked workers deadlock in EGL when the parent process has already
  rendered (as an xdist worker has, after other tests);
- shared_memory=False: gymnasium reads Text observations back from shared memory only once,
  so with shared memory every batched "instruction" is a placeholder string.
"""

import gymnasium as gym
import numpy as np

import robots
import sim_scenes  # noqa: F401  (registers the ids)


def test_async_make_vec_resets_and_steps():
    spec = robots.load("so100")
    venv = gym.make_vec("embodied/Lift-v0", num_envs=2, vectorization_mode="async", robot="so100",
                        vector_kwargs={"context": "spawn", "shared_memory": False})
    try:
        obs, info = venv.reset(seed=0)
        assert obs["state"].shape == (2, spec.action_dim) and obs["state"].dtype == np.float32
        for cam in spec.cameras:
            assert obs["images"][cam.name].shape == (2, cam.height, cam.width, 3)
            assert obs["images"][cam.name].dtype == np.uint8
        assert len(obs["instruction"]) == 2
        assert list(obs["instruction"]) == list(info["instruction"])
        assert all(any(c in s for c in ("red", "green", "blue", "yellow", "purple", "orange")) for s in obs["instruction"])
        for _ in range(3):
            action = venv.action_space.sample()
            assert action.shape == (2, spec.action_dim)
            obs, reward, terminated, truncated, info = venv.step(action)
            assert obs["state"].shape == (2, spec.action_dim)
            assert np.all(np.isfinite(obs["state"]))
            assert reward.shape == terminated.shape == truncated.shape == (2,)
        # the arm moved toward the sampled targets
        assert np.max(np.abs(obs["state"][:, :-1] - np.array(spec.home))) > 1e-3
    finally:
        venv.close()


def test_sync_make_vec_keeps_instructions():
    venv = gym.make_vec("embodied/Stack-v0", num_envs=2, vectorization_mode="sync", robot="koch", images=False)
    try:
        obs, info = venv.reset(seed=1)
        assert obs["state"].shape == (2, 6)
        assert tuple(obs["instruction"]) == tuple(info["instruction"])
        obs, *_ = venv.step(venv.action_space.sample())
        assert obs["state"].shape == (2, 6)
    finally:
        venv.close()
