"""Errors raised by `embodied.runtime` (no torch here).

    EmbodiedError
    └── RuntimeFault            the torch-free deploy runtime
        ├── CorruptBundle           a bundle with missing, unreadable or altered files
        ├── BundleMismatch          a bundle that does not fit this robot (another robot,
        │                           a RobotSpec that changed since export)
        └── ObservationRefused      an observation the bundle cannot serve (missing camera,
                                    instruction that was not exported, wrong shapes)
"""

from __future__ import annotations

from embodied.errors import EmbodiedError


class RuntimeFault(EmbodiedError):
    pass


class CorruptBundle(RuntimeFault):
    pass


class BundleMismatch(RuntimeFault):
    pass


class ObservationRefused(RuntimeFault, ValueError):
    pass
