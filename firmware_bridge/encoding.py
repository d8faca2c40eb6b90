"""Pure integer encodings used on servo buses.

Registers travel as little-endian unsigned integers of 1, 2 or 4 bytes. Signed quantities
use one of two encodings:

- sign-magnitude (Feetech): bit `sign_bit` set means negative, the bits below it hold the
  magnitude (STS3215: bit 15 for position and velocity, bit 10 for load, bit 11 for the
  homing offset);
- two's complement (Dynamixel X series) over the register's full width.

Every encoder rejects a value that does not fit, with an `EncodingError`, instead of
wrapping it silently into another position.
"""

from __future__ import annotations

import math

from firmware_bridge.errors import EncodingError

REGISTER_SIZES = (1, 2, 4)  # [bytes]


def _check_size(size: int) -> None:
    if size not in REGISTER_SIZES:
        raise EncodingError(size, f"register size must be one of {REGISTER_SIZES} bytes", "use 1, 2 or 4")


def int_to_bytes(value: int, size: int) -> bytes:
    """Little-endian bytes of the unsigned `value` in `size` bytes (1, 2 or 4)."""
    _check_size(size)
    if not 0 <= value < 1 << (8 * size):
        raise EncodingError(
            value, f"outside [0, {(1 << (8 * size)) - 1}] for a {size}-byte register",
            "encode signed values first (sign-magnitude or two's complement) and clip to the register range",
        )
    return int(value).to_bytes(size, "little")


def bytes_to_int(data: bytes) -> int:
    """Unsigned integer of little-endian `data` (1, 2 or 4 bytes)."""
    _check_size(len(data))
    return int.from_bytes(data, "little")


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Raw register value of `value` with the sign in bit `sign_bit`, magnitude below it."""
    limit = (1 << sign_bit) - 1
    if abs(value) > limit:
        raise EncodingError(value, f"magnitude above {limit} with the sign in bit {sign_bit}",
                            f"clip to [-{limit}, {limit}]")
    return (-value) | (1 << sign_bit) if value < 0 else value


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Signed value of a raw register with the sign in bit `sign_bit`; bits above it are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if (raw >> sign_bit) & 1 else magnitude


def encode_twos_complement(value: int, size: int) -> int:
    """Raw `size`-byte register value of the signed `value` in two's complement."""
    _check_size(size)
    low, high = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    if not low <= value <= high:
        raise EncodingError(value, f"outside [{low}, {high}] for a signed {size}-byte register",
                            f"clip to [{low}, {high}]")
    return value & ((1 << (8 * size)) - 1)


def decode_twos_complement(raw: int, size: int) -> int:
    """Signed value of a raw `size`-byte register in two's complement."""
    _check_size(size)
    bits = 8 * size
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def _check_direction(direction: int, resolution: int) -> None:
    if direction not in (1, -1):
        raise EncodingError(direction, "direction must be +1 or -1", "set direction = 1 or -1 in robot.toml")
    if resolution <= 0:
        raise EncodingError(resolution, "resolution must be positive [ticks/rev]", "use the model's table")


def ticks_to_radians(ticks: int, resolution: int, direction: int = 1, offset: float = 0.0) -> float:
    """Joint angle [rad] of a servo position [ticks].

    Args:
        ticks: servo position [ticks], as decoded from the register.
        resolution: ticks per revolution [ticks/rev] (4096 for every model here).
        direction: +1 or -1, the sign between servo ticks and the joint angle.
        offset: joint angle [rad] at servo position 0.
    """
    _check_direction(direction, resolution)
    return offset + direction * ticks * (2.0 * math.pi / resolution)


def radians_to_ticks(angle: float, resolution: int, direction: int = 1, offset: float = 0.0) -> int:
    """Servo position [ticks] nearest to a joint angle [rad]; the inverse of `ticks_to_radians`."""
    _check_direction(direction, resolution)
    if not math.isfinite(angle):
        raise EncodingError(angle, "the angle is not finite", "check the command source for NaN / inf")
    return round((angle - offset) * direction * resolution / (2.0 * math.pi))
