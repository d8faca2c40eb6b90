"""Decoded packets, shared by both wire protocols."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.errors import ServoError


@dataclass(frozen=True)
class Packet:
    """One framed packet, checksum verified and (Dynamixel) byte stuffing removed.

    Attributes:
        id: servo id (the broadcast id for sync / bulk instructions).
        instruction: instruction byte; in a status packet the protocol's status marker
            (Dynamixel 0x55), or the error byte (Feetech, whose replies carry no instruction).
        params: parameter bytes after the instruction byte.
    """

    id: int
    instruction: int
    params: bytes = b""


@dataclass(frozen=True)
class Status:
    """A servo's reply: its error byte decoded, and the data it carried.

    Attributes:
        id: the answering servo.
        error: raw status error byte (0 when all is well).
        flags: names of what the error byte reports.
        params: data bytes (a read's register bytes, a ping's model number ...).
    """

    id: int
    error: int
    flags: tuple[str, ...]
    params: bytes = b""

    def raise_for_error(self) -> None:
        """Raise `ServoError` if the error byte is set."""
        if self.error:
            raise ServoError(self.id, self.error, self.flags)
