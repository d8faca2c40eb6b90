"""Errors raised by `embodied`.

    EmbodiedError
    ├── MediaError          a video that cannot be written or read
    └── DataError           datasets
        ├── CorruptStore        a store that cannot be read (names the path and what is wrong)
        ├── SchemaMismatch      stores or episodes whose keys, shapes or robots disagree
        ├── InvalidEpisode      an episode that must not be saved (NaN, wrong shape, empty)
        └── UnsupportedFormat   a foreign dataset of a version this code does not read
"""


class EmbodiedError(Exception):
    """Root of every error raised by `embodied`."""


class MediaError(EmbodiedError):
    pass


class DataError(EmbodiedError):
    pass


class CorruptStore(DataError):
    pass


class SchemaMismatch(DataError):
    pass


class InvalidEpisode(DataError, ValueError):
    pass


class UnsupportedFormat(DataError):
    pass


# --- policy and checkpoints (embodied.policy) ---------------------------------------------
#
#   EmbodiedError
#   ├── PolicyError             the VLA policy
#   │   ├── ConfigError             an invalid PolicyConfig or an unknown preset
#   │   ├── NoAdapter               a robot the policy has no adapter for
#   │   └── InvalidInput            an observation, batch or instruction the policy cannot use
#   └── CheckpointError         policy checkpoints
#       ├── CorruptCheckpoint       missing files, unreadable or altered weights
#       └── CheckpointMismatch      a checkpoint that does not fit what it is loaded for
#                                   (robot, statistics, RobotSpec, encoder versions)


class PolicyError(EmbodiedError):
    pass


class ConfigError(PolicyError, ValueError):
    pass


class NoAdapter(PolicyError):
    pass


class InvalidInput(PolicyError, ValueError):
    pass


class CheckpointError(EmbodiedError):
    pass


class CorruptCheckpoint(CheckpointError):
    pass


class CheckpointMismatch(CheckpointError):
    pass
