"""The cross-embodiment VLA policy: encoders, per-robot adapters, shared trunk, action heads,
checkpoints. Importing this package (or `embodied.policy.io`, `embodied.policy.config`)
does not import torch; the torch-side names load on first use.

    >>> from embodied.policy import VLAPolicy, LanguageEncoder, preset
    >>> policy = VLAPolicy.for_robots(preset("small"), ["so100", "panda"], LanguageEncoder())
"""

from importlib import import_module
from typing import Any

from embodied.policy.config import PRESETS, PolicyConfig, preset
from embodied.policy.io import ActionChunk, Observation

_LAZY = {
    "VLAPolicy": "embodied.policy.model",
    "LanguageEncoder": "embodied.policy.encoders",
    "ImageEncoder": "embodied.policy.encoders",
    "Normalizer": "embodied.policy.normalizer",
    "save_checkpoint": "embodied.policy.checkpoint",
    "load_checkpoint": "embodied.policy.checkpoint",
    "save_adapter": "embodied.policy.checkpoint",
    "load_adapter": "embodied.policy.checkpoint",
}

__all__ = ["PRESETS", "ActionChunk", "Observation", "PolicyConfig", "preset", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embodied.policy' has no attribute {name!r}")
