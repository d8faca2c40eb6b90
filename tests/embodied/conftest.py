"""Fixtures shared by the export, oracle and probe tests: untrained `tiny` so100 policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied.data.transforms import NormStats
from embodied.policy import LanguageEncoder, VLAPolicy, preset
from embodied.policy.normalizer import Normalizer


def _tiny_so100(request, **overrides) -> VLAPolicy:
    torch.manual_seed(0)
    stats = {k: NormStats(np.zeros(6, np.float32), np.ones(6, np.float32), -np.ones(6, np.float32),
                          np.ones(6, np.float32), 10) for k in ("state", "actions")}
    language = LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))
    return VLAPolicy.for_robots(preset("tiny", **overrides), ["so100"], language, Normalizer({"so100": stats})).eval()


@pytest.fixture(scope="module")
def policy(request) -> VLAPolicy:
    """An untrained `tiny` so100 policy (token-level language) with unit statistics (weights seeded)."""
    return _tiny_so100(request)


@pytest.fixture(scope="module")
def pooled_policy(request) -> VLAPolicy:
    """The same with one pooled sentence token as its language (`language_tokens=0`)."""
    return _tiny_so100(request, language_tokens=0, film_queries=0)


@pytest.fixture(scope="module")
def grounding_policy(request) -> VLAPolicy:
    """The same with grounding keypoints read by its adapter (image_keypoints=2, grounded_state)."""
    return _tiny_so100(request, image_keypoints=2, grounding_weight=1.0, grounded_state=True)
