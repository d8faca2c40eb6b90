"""Guards of a training run: batches with NaN/inf are skipped (and counted), and a loss
that runs away stops the run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from embodied.train.errors import TooManyBadBatches, TrainingDiverged


def batch_is_finite(batch: Mapping[str, Any]) -> bool:
    """True when the batch's state and actions hold no NaN or inf."""
    return all(bool(torch.isfinite(batch[k]).all()) for k in ("state", "actions") if k in batch)


@dataclass
class LossGuard:
    """Smoothed loss (EMA), its best value, and the count of bad (skipped) batches.

    Args:
        max_bad: consecutive bad batches tolerated; one more raises TooManyBadBatches.
        factor: the run diverged when the EMA exceeds factor x its best value ...
        after: ... once this many steps are done.
        beta: EMA decay.
    """

    max_bad: int = 5
    factor: float = 10.0
    after: int = 50
    beta: float = 0.9
    ema: float | None = None
    best: float = math.inf
    bad_in_row: int = 0
    skipped: int = 0

    def bad(self, step: int, why: str) -> str:
        """Count a skipped batch; returns the warning text, or raises after too many in a row."""
        self.bad_in_row += 1
        self.skipped += 1
        if self.bad_in_row > self.max_bad:
            raise TooManyBadBatches(f"step {step}: {self.bad_in_row} consecutive batches with {why}; stopped. "
                                    "Check the datasets (`embodied data stats`) and lower --lr")
        return f"step {step}: skipped a batch with {why} ({self.bad_in_row} in a row, {self.skipped} in all)"

    def good(self, step: int, loss: float, last_checkpoint: str) -> None:
        """Record a finite loss; raises TrainingDiverged when the smoothed loss ran away."""
        self.bad_in_row = 0
        self.ema = loss if self.ema is None else self.beta * self.ema + (1 - self.beta) * loss
        if step >= self.after and self.ema > self.factor * self.best:
            raise TrainingDiverged(f"step {step}: the loss diverged (smoothed {self.ema:.4g}, more than "
                                   f"{self.factor:g} x its best {self.best:.4g}); the run stopped. {last_checkpoint}. "
                                   "Lower --lr or raise the warm-up, then resume or start again")
        self.best = min(self.best, self.ema)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "best": self.best, "bad_in_row": self.bad_in_row, "skipped": self.skipped}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.ema, self.best, self.bad_in_row, self.skipped = d["ema"], d["best"], d["bad_in_row"], d["skipped"]
