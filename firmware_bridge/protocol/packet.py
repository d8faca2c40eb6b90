"""Decoded packets, shared by both wire protocols."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.errors import PacketError, ServoError


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


Found = tuple["Packet | None", int, int]  # (packet, start, end) of the first packet in a buffer


def stream_result(found: Found) -> tuple[Packet | None, int]:
    """`find_packet`'s answer from a protocol's search: the packet and the bytes to drop."""
    packet, start, end = found
    return packet, end if packet is not None else start


def exactly_one(found: Found, data: bytes, protocol: str, layout: str) -> Packet:
    """The packet of a buffer that holds exactly one; PacketError for anything else."""
    packet, start, end = found
    if packet is None or (start, end) != (0, len(data)):
        raise PacketError(f"not exactly one {protocol} packet", data, f"{layout} and nothing around it")
    return packet
