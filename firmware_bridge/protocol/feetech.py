"""Feetech SCS/STS packet codec: pure functions of bytes.

Frame: FF FF | id | length | instruction | params ... | checksum, where `length` counts the
bytes after it (instruction, params, checksum) and checksum = ~(id + length + instruction +
sum(params)) & 0xFF. A reply has the same frame with the servo's error byte in place of the
instruction (bits: see `tables.feetech.STS_ERROR_BITS`). Addresses and lengths are one
byte; multi-byte registers are little-endian (STS series). No byte stuffing: a header can
appear inside params, so the parser relies on the checksum and on plausible id and length.

Sources: Feetech SCS communication protocol manual
(http://doc.feetech.cn/#/prodinfodownload?srcType=FT-SCS-Protocol-41ad23fe8a244712ba160b93)
and Feetech's Python SDK `scservo_sdk` (PyPI `feetech-servo-sdk`), whose packet builders
the tests replay byte for byte.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from firmware_bridge.errors import ChecksumError, EncodingError, PacketError, WrongServo
from firmware_bridge.protocol.packet import Packet, Status, exactly_one, stream_result
from firmware_bridge.tables.feetech import STS_ERROR_BITS

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD
MAX_LENGTH = 250  # largest length field accepted [bytes] (the vendor SDK's buffer size)


class Instruction(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


def checksum(body: bytes) -> int:
    """Inverted low byte of the sum of id, length, instruction and params."""
    return ~sum(body) & 0xFF


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodingError(value, f"{what} outside [0, 255]", f"Feetech {what}s are one byte")
    return value


def _check_id(servo_id: int, broadcast: bool = True) -> None:
    if not (0 <= servo_id <= MAX_ID or (broadcast and servo_id == BROADCAST_ID)):
        raise EncodingError(servo_id, f"servo id outside [0, {MAX_ID}]" + (" or 254" if broadcast else ""),
                            "use the id from robot.toml")


def encode(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete frame: header, id, length, instruction (or error byte), params, checksum."""
    _check_id(servo_id)
    length = len(params) + 2
    if length > MAX_LENGTH:
        raise EncodingError(len(params), f"more than {MAX_LENGTH - 2} parameter bytes", "split the request")
    body = bytes([servo_id, length, _byte(instruction, "instruction")]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def ping(servo_id: int) -> bytes:
    return encode(servo_id, Instruction.PING)


def read(servo_id: int, address: int, length: int) -> bytes:
    """Read `length` bytes from `address` of one servo."""
    return encode(servo_id, Instruction.READ, bytes([_byte(address, "address"), _byte(length, "length")]))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return encode(servo_id, Instruction.WRITE, bytes([_byte(address, "address")]) + bytes(data))


def reg_write(servo_id: int, address: int, data: bytes) -> bytes:
    """Like `write`, applied only when an `action` packet arrives."""
    return encode(servo_id, Instruction.REG_WRITE, bytes([_byte(address, "address")]) + bytes(data))


def action(servo_id: int = BROADCAST_ID) -> bytes:
    return encode(servo_id, Instruction.ACTION)


def sync_read(address: int, length: int, ids: Iterable[int]) -> bytes:
    """One request for `length` bytes at `address` of every servo in `ids`; each answers
    with its own reply, in the order of `ids`."""
    ids = bytes(ids)
    for servo_id in ids:
        _check_id(servo_id, broadcast=False)
    params = bytes([_byte(address, "address"), _byte(length, "length")]) + ids
    return encode(BROADCAST_ID, Instruction.SYNC_READ, params)


def sync_write(address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    """Write `length` bytes at `address` of several servos: {id: data}. No reply."""
    params = bytearray([_byte(address, "address"), _byte(length, "length")])
    for servo_id, value in data.items():
        _check_id(servo_id, broadcast=False)
        if len(value) != length:
            raise EncodingError(len(value), f"servo {servo_id} data is not {length} bytes", "encode with the register size")
        params += bytes([servo_id]) + bytes(value)
    return encode(BROADCAST_ID, Instruction.SYNC_WRITE, bytes(params))


def status(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A servo's reply (what an emulated servo sends back)."""
    _check_id(servo_id, broadcast=False)
    return encode(servo_id, error, params)


def find_packet(buffer: bytes) -> tuple[Packet | None, int]:
    """Find the first complete, valid packet in a stream buffer.

    Same contract as `protocol.dynamixel.find_packet`: returns `(packet, consumed)`; without
    a packet, `consumed` only skips garbage before a header that still needs more bytes.
    A header with an impossible id (0xFF) or length is skipped as garbage.

    Raises:
        ChecksumError: a complete frame with a wrong checksum; its `consumed` is one byte
            past the false start, so the search resumes inside the rejected frame.
    """
    return stream_result(_find(buffer))


def _find(buffer: bytes) -> tuple[Packet | None, int, int]:
    """`find_packet` that also returns where the packet starts: (packet, start, end)."""
    start = buffer.find(HEADER)
    while start >= 0:
        if len(buffer) < start + 4:
            return None, start, start
        servo_id, length = buffer[start + 2], buffer[start + 3]
        if servo_id <= BROADCAST_ID and 2 <= length <= MAX_LENGTH:
            end = start + 4 + length
            if len(buffer) < end:
                return None, start, start
            frame = bytes(buffer[start:end])
            if checksum(frame[2:-1]) != frame[-1]:
                raise ChecksumError(frame, f"checksum {checksum(frame[2:-1]):02X} in the last byte", start + 1)
            return Packet(servo_id, frame[4], frame[5:-1]), start, end
        start = buffer.find(HEADER, start + 1)
    skip = len(buffer) - (1 if buffer.endswith(b"\xff") else 0)
    return None, skip, skip


def decode(data: bytes) -> Packet:
    """The single packet that `data` holds exactly; `PacketError` for anything else."""
    return exactly_one(_find(data), data, "Feetech", "FF FF, id, length, instruction, params, checksum")


def decode_status(packet: Packet, expected_id: int | None = None) -> Status:
    """The `Status` that a reply carries (its instruction byte is the error byte).

    Raises:
        PacketError: the packet comes from the broadcast id, which never replies.
        WrongServo: it comes from another servo than `expected_id`.
    """
    if packet.id == BROADCAST_ID:
        raise PacketError("a reply from the broadcast id", bytes([packet.id, packet.instruction]),
                          f"a servo id in [0, {MAX_ID}]")
    if expected_id is not None and packet.id != expected_id:
        raise WrongServo(expected_id, packet.id)
    error = packet.instruction
    flags = tuple(STS_ERROR_BITS.get(bit, f"bit {bit}") for bit in range(8) if error >> bit & 1)
    return Status(packet.id, error, flags, packet.params)
