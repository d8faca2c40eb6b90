"""Fixtures of the policy tests: one MiniLM encoder for the session (its embeddings cached
on disk in pytest's cache folder, so later runs skip loading the model) and hand-built
batches in the collate format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied.data.transforms import NormStats
from embodied.policy import LanguageEncoder, VLAPolicy, preset
from embodied.policy.normalizer import Normalizer

ROBOTS = {"so100": (6, 6, ["front", "wrist"]), "panda": (8, 8, ["wrist", "external"])}
SLOTS = ["front", "wrist", "external"]


@pytest.fixture(scope="session")
def language(request) -> LanguageEncoder:
    return LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))


def _stats(dim: int, seed: int = 0) -> dict[str, NormStats]:
    rng = np.random.default_rng(seed)
    mean, std = rng.normal(size=dim).astype(np.float32), rng.uniform(0.5, 2, dim).astype(np.float32)
    return {k: NormStats(mean, std, mean - 2 * std, mean + 2 * std, count=100) for k in ("state", "actions")}


def _policy(language: LanguageEncoder, head: str = "l1", seed: int = 0, **overrides) -> VLAPolicy:
    torch.manual_seed(seed)
    normalizer = Normalizer({r: _stats(n, i) for i, (r, (n, _, _)) in enumerate(ROBOTS.items())})
    return VLAPolicy.for_robots(preset("tiny", head=head, **overrides), list(ROBOTS), language, normalizer)


def _batch(seed: int = 0, chunk: int = 4, size: int = 32) -> dict:
    """so100, panda, so100: padded to 8 state/action dims and 3 named camera slots; the last
    sample's chunk runs past its episode end after 2 steps."""
    g = torch.Generator().manual_seed(seed)
    names = ["so100", "panda", "so100"]
    b = len(names)
    dims = torch.tensor([ROBOTS[n][0] for n in names])
    mask = torch.arange(8)[None] < dims[:, None]
    valid = torch.ones(b, chunk, dtype=torch.bool)
    valid[2, 2:] = False
    cameras = [ROBOTS[n][2] for n in names]
    return {
        "robot": names, "instruction": ["pick up the red cube", "push the blue cube", "pick up the red cube"],
        "cameras": cameras, "camera_slots": SLOTS,
        "state": torch.randn(b, 8, generator=g) * mask, "state_mask": mask,
        "actions": torch.randn(b, chunk, 8, generator=g) * mask[:, None], "action_mask": mask.clone(),
        "action_valid": valid,
        "images": torch.randint(0, 256, (b, len(SLOTS), size, size, 3), generator=g, dtype=torch.uint8),
        "camera_mask": torch.tensor([[s in cams for s in SLOTS] for cams in cameras]),
    }


@pytest.fixture(scope="session")
def make_policy(language):
    """make_policy(head="l1", seed=0, **config overrides) -> tiny VLAPolicy for so100 and panda."""
    return lambda **kw: _policy(language, **kw)


@pytest.fixture(scope="session")
def make_batch():
    """make_batch(seed=0, chunk=4, size=32) -> a mixed so100/panda batch in the collate format."""
    return _batch


@pytest.fixture(scope="session")
def make_stats():
    """make_stats(dim, seed=0) -> {"state": NormStats, "actions": NormStats}."""
    return _stats
