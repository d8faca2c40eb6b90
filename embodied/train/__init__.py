"""Training: pooled multi-robot training (`train`), adapter-only finetuning (`finetune`).

    >>> from embodied.train import TrainConfig, train
    >>> train(TrainConfig(out="runs/x", data=("datasets/so100_lift.zarr",), preset="tiny", steps=100))

Importing this package does not import torch; the functions load on first use.
"""

from importlib import import_module
from typing import Any

from embodied.train.config import TrainConfig
from embodied.train.errors import ResumeMismatch, TooManyBadBatches, TrainError, TrainingDiverged

_LAZY = {"train": "embodied.train.pooled", "finetune": "embodied.train.adapt"}

__all__ = ["ResumeMismatch", "TooManyBadBatches", "TrainConfig", "TrainError", "TrainingDiverged", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embodied.train' has no attribute {name!r}")
