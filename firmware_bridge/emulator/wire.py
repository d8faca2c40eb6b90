"""What emulated servos answer to an instruction packet: one handler per instruction,
shared by both protocols (their instruction numbers agree; addresses and lengths are one
byte on Feetech, two on Dynamixel). Bulk read exists on Dynamixel only."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from firmware_bridge.codec import Codec
from firmware_bridge.emulator.servo import RANGE_ERROR, EmulatedServo
from firmware_bridge.protocol.packet import Packet
from firmware_bridge.tables import Reg

INSTRUCTION_ERROR = 2  # Dynamixel error number for an instruction a servo does not know

Reply = tuple[int, bytes]  # (servo id, reply bytes), in the order they go on the wire
Handler = Callable[[Codec, Mapping[int, EmulatedServo], Packet], list[Reply]]


def _u(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset:offset + size], "little")


def _reply(codec: Codec, servo: EmulatedServo, data: bytes = b"", error_number: int = 0) -> Reply:
    return servo.id, codec.status(servo.id, servo.status_error(error_number), data)


def _read_reply(codec: Codec, servo: EmulatedServo, address: int, length: int) -> Reply:
    data = servo.read(address, length)
    return _reply(codec, servo, b"", RANGE_ERROR) if data is None else _reply(codec, servo, data)


def _targets(servos: Mapping[int, EmulatedServo], packet: Packet, codec: Codec) -> list[EmulatedServo]:
    if packet.id == codec.broadcast_id:
        return [servos[i] for i in sorted(servos)]
    return [servos[packet.id]] if packet.id in servos else []


def ping(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    replies = []
    for servo in _targets(servos, packet, codec):
        data = servo.get(Reg.MODEL_NUMBER).to_bytes(2, "little") + bytes([servo.get(Reg.FIRMWARE_VERSION)])
        replies.append(_reply(codec, servo, data[:codec.ping_data]))
    return replies


def read(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    n = codec.addr_size
    servo = servos.get(packet.id)
    if servo is None or len(packet.params) != 2 * n:
        return []
    return [_read_reply(codec, servo, _u(packet.params, 0, n), _u(packet.params, n, n))]


def write(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    n = codec.addr_size
    replies = []
    for servo in _targets(servos, packet, codec):
        error = servo.write(_u(packet.params, 0, n), packet.params[n:])
        if packet.id != codec.broadcast_id and servo.get(Reg.STATUS_RETURN_LEVEL) >= codec.write_reply_level:
            replies.append(_reply(codec, servo, b"", error))
    return replies


def sync_read(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    n = codec.addr_size
    address, length = _u(packet.params, 0, n), _u(packet.params, n, n)
    return [_read_reply(codec, servos[i], address, length) for i in packet.params[2 * n:] if i in servos]


def sync_write(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    n = codec.addr_size
    address, length = _u(packet.params, 0, n), _u(packet.params, n, n)
    body = packet.params[2 * n:]
    for start in range(0, len(body) - length, length + 1):
        servo = servos.get(body[start])
        if servo is not None:
            servo.write(address, body[start + 1:start + 1 + length])
    return []


def bulk_read(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    replies = []
    for start in range(0, len(packet.params) - 4, 5):
        servo = servos.get(packet.params[start])
        if servo is not None:
            replies.append(_read_reply(codec, servo, _u(packet.params, start + 1, 2), _u(packet.params, start + 3, 2)))
    return replies


HANDLERS: dict[str, dict[int, Handler]] = {
    "feetech_sts": {0x01: ping, 0x02: read, 0x03: write, 0x82: sync_read, 0x83: sync_write},
    "dynamixel_2": {0x01: ping, 0x02: read, 0x03: write, 0x82: sync_read, 0x83: sync_write, 0x92: bulk_read},
}


def respond(codec: Codec, servos: Mapping[int, EmulatedServo], packet: Packet) -> list[Reply]:
    """The replies to `packet` from the servos it addresses, in wire order. An unknown
    instruction gets a Dynamixel instruction error from an addressed servo, and silence on Feetech."""
    handler = HANDLERS[codec.protocol].get(packet.instruction)
    if handler is not None:
        return handler(codec, servos, packet)
    servo = servos.get(packet.id)
    if servo is None or codec.error_bits_in_status:
        return []
    return [_reply(codec, servo, b"", INSTRUCTION_ERROR)]
