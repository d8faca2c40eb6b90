"""The localization measure of grounding policies (`embodied.eval.localization`)."""

import numpy as np
import pytest
import torch

from embodied.collect.simgen import SimgenConfig, generate
from embodied.data import EpisodeStore
from embodied.errors import DataError
from embodied.eval.localization import keypoint_errors, summarize
from embodied.policy import LanguageEncoder, VLAPolicy, preset
from embodied.train.data import build_dataset


@pytest.fixture(scope="module")
def push_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("localization") / "koch_push"
    generate(SimgenConfig("koch", "push", 1, out), progress=False)
    return EpisodeStore.open(out)


def _policy(request, **overrides) -> VLAPolicy:
    language = LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))
    return VLAPolicy.for_robots(preset("tiny", **overrides), ["koch"], language).eval()


def test_errors_are_the_offsets_from_the_keypoints(request, push_store):
    """Keypoints whose logits are constant sit at the image centre, so each error is the
    label's own distance from the centre; every labelled frame is measured."""
    policy = _policy(request, image_keypoints=2)
    with torch.no_grad():
        policy.image.keypoint_logits.weight.zero_()
        policy.image.keypoint_logits.bias.zero_()
    dataset = build_dataset([push_store], policy.config.chunk, augment=False)
    errors = keypoint_errors(policy, dataset, stride=3)
    assert set(errors) == {"top/target", "top/goal", "side/target", "side/goal"}
    ep = push_store.episode(0)
    for key, offsets in errors.items():
        camera, role = key.split("/")
        labels = ep.role_pixels[camera][::3, ("target", "goal").index(role)]
        np.testing.assert_allclose(offsets, np.abs(labels[np.isfinite(labels).all(-1)]), atol=1e-5)


def test_summary_in_pixels():
    errors = {"top/target": np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.5]])}  # normalized units
    out = summarize(errors, {"top": (96, 128)}, within=8.0)["top/target"]
    # x spans 128 px (6.4 px per 0.1), y spans 96 px (24 px per 0.5)
    assert out["frames"] == 3 and out["mean_px"] == pytest.approx((0 + 6.4 + 24) / 3, abs=0.01)
    assert out["median_px"] == pytest.approx(6.4, abs=0.01)
    assert out["p90_px"] == pytest.approx(6.4 + 0.8 * (24 - 6.4), abs=0.01)  # linear between the top two
    assert out["within_8px"] == pytest.approx(2 / 3, abs=1e-3)


def test_needs_keypoints_and_labels(request, push_store, tmp_path):
    dataset = build_dataset([push_store], 4, augment=False)
    with pytest.raises(DataError, match="image keypoints"):
        keypoint_errors(_policy(request), dataset)
    unlabelled = EpisodeStore.create(tmp_path / "plain", "koch", 30, 6, 6, push_store.cameras)
    ep = push_store.episode(0)
    ep.role_pixels = {}
    unlabelled.append(ep)
    unlabelled.stats()
    with pytest.raises(DataError, match="no frame of the dataset carries role-pixel labels"):
        keypoint_errors(_policy(request, image_keypoints=2), build_dataset([unlabelled], 4, augment=False))
