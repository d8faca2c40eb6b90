"""The per-chunk probe of policy episodes (embodied.eval.probe)."""

import numpy as np
import torch

from embodied.data.transforms import NormStats
from embodied.eval.policy_rollout import TorchPolicy
from embodied.eval.probe import probe_episode
from embodied.policy import LanguageEncoder, VLAPolicy, preset
from embodied.policy.normalizer import Normalizer
from sim_scenes.env import TaskEnv


def test_probe_records_each_chunk_from_where_the_episode_starts(request):
    torch.manual_seed(0)
    stats = {k: NormStats(np.zeros(6, np.float32), np.ones(6, np.float32), -np.ones(6, np.float32),
                          np.ones(6, np.float32), 10) for k in ("state", "actions")}
    language = LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))
    config = preset("tiny", image_keypoints=2, grounding_weight=1.0, grounded_state=True)
    vla = VLAPolicy.for_robots(config, ["so100"], language, Normalizer({"so100": stats})).eval()
    env = TaskEnv("lift", "so100")
    report = probe_episode(TorchPolicy(vla), env, seed=4)
    chunks = report["chunks"]
    assert not report["success"] and len(chunks) >= 2
    env.reset(seed=4)  # the first chunk is asked for in the reset scene
    start = (env.scene.data.site(env.robot.ee_site).xpos - env.scene.body_pos(env.instance.target)) * 1000.0
    np.testing.assert_allclose(chunks[0]["offset_mm"], start, atol=0.06)
    assert chunks[0]["opening"] == round(env.scene.gripper_opening(), 3)
    assert report["closest_xy_mm"] == round(min(np.hypot(*c["offset_mm"][:2]) for c in chunks), 1)
    cameras = {c.name for c in env.robot.cameras}
    for c in chunks:
        assert set(c["keypoint_px"]) == cameras
        assert all(np.isnan(e) or e >= 0 for e in c["keypoint_px"].values())
    assert any(c["offset_mm"] != chunks[0]["offset_mm"] for c in chunks[1:])  # the arm moved
