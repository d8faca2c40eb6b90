import subprocess
import sys

import numpy as np
import pytest

from embodied.errors import InvalidInput
from embodied.policy.io import ActionChunk, Observation


def test_io_imports_no_torch():
    code = "import sys, embodied.policy.io, embodied.policy.config, embodied.policy; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_observation_checks():
    with pytest.raises(InvalidInput, match="finite"):
        Observation("so100", "push", np.array([0.0, np.nan]))
    with pytest.raises(InvalidInput, match="uint8"):
        Observation("so100", "push", np.zeros(6), {"front": np.zeros((8, 8, 3), np.float32)})
    with pytest.raises(InvalidInput, match="float32\\[H, m\\]"):
        ActionChunk(np.zeros(6))


def test_act_returns_robot_units(make_policy):
    policy = make_policy()
    state = policy.normalizer.stats["panda"]["state"].mean + 0.1
    obs = Observation("panda", "pick up the red cube", state, {"wrist": np.zeros((32, 32, 3), np.uint8)})
    chunk = policy.act(obs)
    assert (chunk.horizon, chunk.dim) == (4, 8) and policy.training
    normalized = policy.predict(policy.observation_batch(obs))[0].numpy()
    s = policy.normalizer.stats["panda"]["actions"]
    np.testing.assert_allclose(chunk.actions, normalized * (s.std + 1e-6) + s.mean, rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidInput, match="no cameras"):
        policy.act(Observation("panda", "push", state, {"top": np.zeros((32, 32, 3), np.uint8)}))
    with pytest.raises(InvalidInput, match="8 state dimensions"):
        policy.act(Observation("panda", "push", state[:6]))
