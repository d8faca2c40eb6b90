"""Fixtures shared by the export tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied.data.transforms import NormStats
from embodied.policy import LanguageEncoder, VLAPolicy, preset
from embodied.policy.normalizer import Normalizer


@pytest.fixture(scope="module")
def policy(request) -> VLAPolicy:
    """An untrained `tiny` so100 policy with unit statistics (weights seeded)."""
    torch.manual_seed(0)
    stats = {k: NormStats(np.zeros(6, np.float32), np.ones(6, np.float32), -np.ones(6, np.float32),
                          np.ones(6, np.float32), 10) for k in ("state", "actions")}
    language = LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))
    return VLAPolicy.for_robots(preset("tiny"), ["so100"], language, Normalizer({"so100": stats})).eval()
