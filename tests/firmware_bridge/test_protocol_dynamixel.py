"""Dynamixel Protocol 2.0 codec against the example packets of the ROBOTIS e-Manual.

Vectors: https://emanual.robotis.com/docs/en/dxl/protocol2/ (Ping, Read, Write, Reg Write,
Action, Reboot, Factory Reset, Sync Read, Sync Write, Bulk Read examples and the status
packets answering them).
"""

import pytest

from firmware_bridge.errors import ChecksumError, EncodingError, PacketError, ServoError, WrongServo
from firmware_bridge.protocol import Packet
from firmware_bridge.protocol import dynamixel as dxl


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def le32(value: int) -> bytes:
    return value.to_bytes(4, "little")


INSTRUCTION_VECTORS = [
    (dxl.ping(1), "FF FF FD 00 01 03 00 01 19 4E"),
    (dxl.ping(dxl.BROADCAST_ID), "FF FF FD 00 FE 03 00 01 31 42"),
    (dxl.read(1, 132, 4), "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15"),
    (dxl.write(1, 116, le32(512)), "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89"),
    (dxl.reg_write(1, 104, le32(200)), "FF FF FD 00 01 09 00 04 68 00 C8 00 00 00 AE 8E"),
    (dxl.action(1), "FF FF FD 00 01 03 00 05 02 CE"),
    (dxl.reboot(1), "FF FF FD 00 01 03 00 08 2F 4E"),
    (dxl.factory_reset(1, 0x01), "FF FF FD 00 01 04 00 06 01 A1 E6"),
    (dxl.sync_read(132, 4, [1, 2]), "FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA"),
    (dxl.sync_write(116, 4, {1: le32(150), 2: le32(170)}),
     "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87"),
    (dxl.bulk_read([(1, 144, 2), (2, 146, 1)]), "FF FF FD 00 FE 0D 00 92 01 90 00 02 00 02 92 00 01 00 1A 05"),
]

STATUS_VECTORS = [  # (bytes, id, error, params)
    ("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D", 1, 0, h("06 04 26")),  # ping: model 1030, firmware 38
    ("FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0", 1, 0, le32(166)),  # read: position 166
    ("FF FF FD 00 01 04 00 55 00 A1 0C", 1, 0, b""),  # write / action / reboot acknowledged
]


@pytest.mark.parametrize("built, expected", INSTRUCTION_VECTORS, ids=lambda v: v if isinstance(v, str) else "")
def test_instruction_packets_match_the_manual(built, expected):
    assert built == h(expected)
    assert dxl.encode(*_fields(dxl.decode(built))) == built


def _fields(packet: Packet):
    return packet.id, packet.instruction, packet.params


@pytest.mark.parametrize("raw, servo_id, error, params", STATUS_VECTORS)
def test_status_packets_match_the_manual(raw, servo_id, error, params):
    assert dxl.status(servo_id, error, params) == h(raw)
    status = dxl.decode_status(dxl.decode(h(raw)), expected_id=servo_id)
    assert (status.id, status.error, status.params, status.flags) == (servo_id, error, params, ())
    status.raise_for_error()


def test_crc_of_the_manual_ping():
    assert dxl.crc16(h("FF FF FD 00 01 03 00 01")) == 0x4E19


def test_byte_stuffing_round_trip():
    # a read whose parameters hold a header; the stuffed frame grows by one FD
    frame = dxl.encode(3, dxl.Instruction.READ, h("FF FF FD"))
    assert frame == h("FF FF FD 00 03 07 00 02 FF FF FD FD 0B 71")
    assert dxl.decode(frame) == Packet(3, dxl.Instruction.READ, h("FF FF FD"))
    for body in (h("FF FF FD FD"), h("FF FF FD FF FF FD"), h("FD FF FF FD 00"), h("FF FF FF FD")):
        assert dxl.unstuff(dxl.stuff(body)) == body
        assert h("FF FF FD") not in dxl.stuff(body).replace(h("FF FF FD FD"), b"")


def test_status_error_byte_decodes_to_flags():
    status = dxl.decode_status(dxl.decode(dxl.status(5, 0x80 | 4)))
    assert status.flags == ("hardware alert (read Hardware Error Status)", "data range error")
    with pytest.raises(ServoError) as info:
        status.raise_for_error()
    assert info.value.servo_id == 5 and "data range error" in str(info.value)


def test_decode_status_rejects_wrong_servo_and_instruction_packets():
    with pytest.raises(WrongServo, match="expected a reply from servo 2"):
        dxl.decode_status(dxl.decode(dxl.status(1)), expected_id=2)
    with pytest.raises(PacketError, match="not a status packet"):
        dxl.decode_status(dxl.decode(dxl.ping(1)))


def test_stream_parser_skips_garbage_and_waits_for_more():
    ping, reply = dxl.ping(1), dxl.status(1)
    stream = b"\x00\x12\xff" + ping + b"\xff\xff\xfd\x00\x01" + reply
    packet, consumed = dxl.find_packet(stream)
    assert packet == Packet(1, dxl.Instruction.PING) and consumed == 3 + len(ping)
    stream = stream[consumed:]
    packet, consumed = dxl.find_packet(stream)  # a cut header whose "length" is FF FF: skipped
    assert packet == Packet(1, dxl.Instruction.STATUS, b"\x00") and consumed == len(stream)
    assert dxl.find_packet(b"\x07" + dxl.read(1, 132, 4)[:9]) == (None, 1)  # a plausible length: it waits
    assert dxl.find_packet(b"\x01\x02\xff\xff\xfd") == (None, 2)  # keeps a possible header start
    assert dxl.find_packet(reply[:-1]) == (None, 0)
    assert dxl.find_packet(b"") == (None, 0)


def test_stream_parser_raises_on_bad_crc_and_resumes_inside():
    frame = bytearray(dxl.status(1, 0, le32(166)))
    frame[-1] ^= 0x01
    with pytest.raises(ChecksumError) as info:
        dxl.find_packet(b"\x00" + bytes(frame))
    assert info.value.consumed == 2 and "FF FF FD 00 01 08" in str(info.value)


def test_decode_rejects_extra_bytes_and_bad_ids():
    with pytest.raises(PacketError, match="exactly one"):
        dxl.decode(dxl.ping(1) + b"\x00")
    with pytest.raises(PacketError):
        dxl.decode(b"\x00" + dxl.ping(1))
    with pytest.raises(EncodingError):
        dxl.ping(253)
    with pytest.raises(EncodingError):
        dxl.sync_read(132, 4, [1, dxl.BROADCAST_ID])
    with pytest.raises(EncodingError, match="not 4 bytes"):
        dxl.sync_write(116, 4, {1: b"\x00\x00"})
