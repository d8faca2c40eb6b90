"""Errors raised by `embodied`.

    EmbodiedError
    └── MediaError     a video that cannot be written
"""


class EmbodiedError(Exception):
    """Root of every error raised by `embodied`."""


class MediaError(EmbodiedError):
    pass
