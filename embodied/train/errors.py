"""Errors raised by `embodied.train` (all are `EmbodiedError`s, so the CLI prints them cleanly).

    TrainError
    ├── TrainingDiverged    the loss ran away; the run stopped, the last good checkpoint is kept
    ├── TooManyBadBatches   K consecutive batches with NaN/inf (data or gradients); run stopped
    └── ResumeMismatch      a run folder whose saved run does not fit the command given
"""

from embodied.errors import EmbodiedError


class TrainError(EmbodiedError):
    """Root of the training errors."""


class TrainingDiverged(TrainError):
    pass


class TooManyBadBatches(TrainError):
    pass


class ResumeMismatch(TrainError):
    pass
