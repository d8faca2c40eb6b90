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
