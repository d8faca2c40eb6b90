"""Dynamixel Protocol 2.0 packet codec: pure functions of bytes.

Frame: FF FF FD 00 | id | length (2 bytes LE) | instruction | params ... | CRC-16 (2 bytes LE).
`length` counts the bytes after it (instruction, stuffed params, CRC). Inside instruction and
params, every FF FF FD gets an extra FD (byte stuffing) so no header appears in the body;
the CRC (polynomial 0x8005, initial value 0, not reflected) covers the stuffed frame from
the header up to the last parameter. A status packet has instruction 0x55 followed by an
error byte: bit 7 is the hardware alert (read Hardware Error Status), bits 0-6 an error
number.

Source: ROBOTIS e-Manual, Protocol 2.0, https://emanual.robotis.com/docs/en/dxl/protocol2/
(packet layout, CRC, byte stuffing, instruction examples; the tests replay its examples).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence

from firmware_bridge.encoding import int_to_bytes
from firmware_bridge.errors import ChecksumError, EncodingError, PacketError, WrongServo
from firmware_bridge.protocol.packet import Packet, Status, exactly_one, stream_result

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
MAX_LENGTH = 1024  # largest length field accepted [bytes] (the vendor SDK's buffer size)
ALERT_BIT = 0x80


class Instruction(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    FACTORY_RESET = 0x06
    REBOOT = 0x08
    CLEAR = 0x10
    STATUS = 0x55
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    BULK_READ = 0x92
    BULK_WRITE = 0x93


ERROR_NUMBERS = {1: "result fail", 2: "instruction error", 3: "CRC error", 4: "data range error",
                 5: "data length error", 6: "data limit error", 7: "access error"}


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16 of `data` as Protocol 2.0 defines it (polynomial 0x8005, initial value 0)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert an FD after every FF FF FD of an instruction + params body."""
    out = bytearray()
    for i, byte in enumerate(body):
        out.append(byte)
        if byte == 0xFD and body[max(0, i - 2):i] == b"\xff\xff":
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Remove the FD that `stuff` inserted after each FF FF FD."""
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        stuffed = out[-3:] == b"\xff\xff\xfd" and body[i + 1:i + 2] == b"\xfd"
        i += 2 if stuffed else 1
    return bytes(out)


def _check_id(servo_id: int, broadcast: bool = True) -> None:
    if not (0 <= servo_id <= MAX_ID or (broadcast and servo_id == BROADCAST_ID)):
        raise EncodingError(servo_id, f"servo id outside [0, {MAX_ID}]" + (" or 254" if broadcast else ""),
                            "use the id from robot.toml")


def encode(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete frame: header, id, length, stuffed instruction + params, CRC."""
    _check_id(servo_id)
    body = stuff(bytes([instruction]) + bytes(params))
    if len(body) + 2 > MAX_LENGTH:
        raise EncodingError(len(body), f"packet body longer than {MAX_LENGTH - 2} bytes", "split the request")
    frame = HEADER + bytes([servo_id]) + int_to_bytes(len(body) + 2, 2) + body
    return frame + int_to_bytes(crc16(frame), 2)


def _u16(value: int) -> bytes:
    return int_to_bytes(value, 2)


def ping(servo_id: int) -> bytes:
    return encode(servo_id, Instruction.PING)


def read(servo_id: int, address: int, length: int) -> bytes:
    """Read `length` bytes from `address` of one servo."""
    return encode(servo_id, Instruction.READ, _u16(address) + _u16(length))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return encode(servo_id, Instruction.WRITE, _u16(address) + bytes(data))


def reg_write(servo_id: int, address: int, data: bytes) -> bytes:
    """Like `write`, applied only when an `action` packet arrives."""
    return encode(servo_id, Instruction.REG_WRITE, _u16(address) + bytes(data))


def action(servo_id: int = BROADCAST_ID) -> bytes:
    return encode(servo_id, Instruction.ACTION)


def reboot(servo_id: int) -> bytes:
    return encode(servo_id, Instruction.REBOOT)


def factory_reset(servo_id: int, option: int = 0xFF) -> bytes:
    """Option 0xFF resets everything, 0x01 all but the id, 0x02 all but id and baud rate."""
    return encode(servo_id, Instruction.FACTORY_RESET, bytes([option]))


def sync_read(address: int, length: int, ids: Iterable[int]) -> bytes:
    """One request for the same `length` bytes at `address` of every servo in `ids`;
    each answers with its own status packet, in the order of `ids`."""
    ids = bytes(ids)
    for servo_id in ids:
        _check_id(servo_id, broadcast=False)
    return encode(BROADCAST_ID, Instruction.SYNC_READ, _u16(address) + _u16(length) + ids)


def sync_write(address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    """Write `length` bytes at `address` of several servos: {id: data}. No reply."""
    params = bytearray(_u16(address) + _u16(length))
    for servo_id, value in data.items():
        _check_id(servo_id, broadcast=False)
        if len(value) != length:
            raise EncodingError(len(value), f"servo {servo_id} data is not {length} bytes", "encode with the register size")
        params += bytes([servo_id]) + bytes(value)
    return encode(BROADCAST_ID, Instruction.SYNC_WRITE, bytes(params))


def bulk_read(requests: Sequence[tuple[int, int, int]]) -> bytes:
    """Read different registers of several servos: [(id, address, length)]."""
    params = bytearray()
    for servo_id, address, length in requests:
        _check_id(servo_id, broadcast=False)
        params += bytes([servo_id]) + _u16(address) + _u16(length)
    return encode(BROADCAST_ID, Instruction.BULK_READ, bytes(params))


def bulk_write(requests: Sequence[tuple[int, int, bytes]]) -> bytes:
    """Write different registers of several servos: [(id, address, data)]. No reply."""
    params = bytearray()
    for servo_id, address, data in requests:
        _check_id(servo_id, broadcast=False)
        params += bytes([servo_id]) + _u16(address) + _u16(len(data)) + bytes(data)
    return encode(BROADCAST_ID, Instruction.BULK_WRITE, bytes(params))


def status(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A servo's status packet (what an emulated servo sends back)."""
    _check_id(servo_id, broadcast=False)
    return encode(servo_id, Instruction.STATUS, bytes([error]) + bytes(params))


def _partial_header(buffer: bytes) -> int:
    """Length of the longest tail of `buffer` that could start a header."""
    for keep in (3, 2, 1):
        if buffer[-keep:] == HEADER[:keep]:
            return keep
    return 0


def find_packet(buffer: bytes) -> tuple[Packet | None, int]:
    """Find the first complete, valid packet in a stream buffer.

    Returns `(packet, consumed)`: drop `consumed` bytes from the front of the buffer. With
    a packet, `consumed` ends right after it. Without one, `consumed` skips the garbage
    before a header (or a possible header start) that still needs more bytes; a caller
    that knows no more bytes will come (a timeout) drops one byte more and calls again.
    A header with an impossible id or length is skipped as garbage.

    Raises:
        ChecksumError: a complete frame with a wrong CRC; its `consumed` is one byte
            past the false start, so the search resumes inside the rejected frame.
    """
    return stream_result(_find(buffer))


def _find(buffer: bytes) -> tuple[Packet | None, int, int]:
    """`find_packet` that also returns where the packet starts: (packet, start, end)."""
    start = buffer.find(HEADER)
    while start >= 0:
        if len(buffer) < start + 7:
            return None, start, start
        servo_id = buffer[start + 4]
        length = int.from_bytes(buffer[start + 5:start + 7], "little")
        if (servo_id <= MAX_ID or servo_id == BROADCAST_ID) and 3 <= length <= MAX_LENGTH:
            end = start + 7 + length
            if len(buffer) < end:
                return None, start, start
            frame = bytes(buffer[start:end])
            crc = int.from_bytes(frame[-2:], "little")
            if crc16(frame[:-2]) != crc:
                raise ChecksumError(frame, f"CRC {crc16(frame[:-2]):04X} in the last two bytes (LE)", start + 1)
            body = unstuff(frame[7:-2])
            return Packet(servo_id, body[0], body[1:]), start, end
        start = buffer.find(HEADER, start + 1)
    skip = len(buffer) - _partial_header(buffer)
    return None, skip, skip


def decode(data: bytes) -> Packet:
    """The single packet that `data` holds exactly; `PacketError` for anything else."""
    return exactly_one(_find(data), data, "Protocol 2.0", "FF FF FD 00, id, length, instruction, params, CRC")


def decode_status(packet: Packet, expected_id: int | None = None) -> Status:
    """The `Status` that a status packet carries.

    Raises:
        PacketError: the packet is not a status packet.
        WrongServo: it comes from another servo than `expected_id`.
    """
    if packet.instruction != Instruction.STATUS or not packet.params:
        raise PacketError(f"not a status packet (instruction 0x{packet.instruction:02X})",
                          bytes([packet.instruction]) + packet.params, "instruction 0x55 and an error byte")
    if expected_id is not None and packet.id != expected_id:
        raise WrongServo(expected_id, packet.id)
    error = packet.params[0]
    flags = ("hardware alert (read Hardware Error Status)",) if error & ALERT_BIT else ()
    number = error & ~ALERT_BIT
    if number:
        flags += (ERROR_NUMBERS.get(number, f"error number {number}"),)
    return Status(packet.id, error, flags, packet.params[1:])
