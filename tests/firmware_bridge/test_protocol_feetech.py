"""Feetech SCS/STS codec against the examples of the Feetech communication protocol manual.

Vectors: Feetech SCS protocol manual (doc.feetech.cn FT-SCS-Protocol; mirror
https://files.seeedstudio.com/wiki/robotics/Actuator/feetech/Communication_Protocol_Manual.pdf):
ping id 1 and its reply, read of Present Position, the six-byte Goal Position write,
a broadcast write of the ID register. Sync read / write are checked against the vendor SDK
in test_vendor_sdk.py.
"""

import pytest

from firmware_bridge.errors import ChecksumError, EncodingError, PacketError, ServoError, WrongServo
from firmware_bridge.protocol import Packet
from firmware_bridge.protocol import feetech as ft


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("built, expected", [
    (ft.ping(1), "FF FF 01 02 01 FB"),
    (ft.read(1, 0x38, 2), "FF FF 01 04 02 38 02 BE"),
    (ft.write(1, 0x2A, h("00 08 00 00 E8 03")), "FF FF 01 09 03 2A 00 08 00 00 E8 03 D5"),
    (ft.write(ft.BROADCAST_ID, 5, b"\x01"), "FF FF FE 04 03 05 01 F4"),
    (ft.status(1), "FF FF 01 02 00 FC"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_packets_match_the_manual(built, expected):
    assert built == h(expected)
    packet = ft.decode(built)
    assert ft.encode(packet.id, packet.instruction, packet.params) == built


def test_sync_packets_layout():
    assert ft.sync_read(56, 2, [1, 2]) == ft.encode(0xFE, 0x82, h("38 02 01 02"))
    assert ft.sync_write(42, 2, {1: h("00 08"), 2: h("FF 07")}) == ft.encode(0xFE, 0x83, h("2A 02 01 00 08 02 FF 07"))


def test_status_decode():
    status = ft.decode_status(ft.decode(ft.status(3, 0, h("00 08"))), expected_id=3)
    assert (status.id, status.error, status.params, status.flags) == (3, 0, h("00 08"), ())
    status = ft.decode_status(ft.decode(ft.status(3, 0b100100)))
    assert status.flags == ("overheating", "overload")
    with pytest.raises(ServoError, match="servo 3 reports error 0x24: overheating, overload"):
        status.raise_for_error()
    with pytest.raises(WrongServo):
        ft.decode_status(ft.decode(ft.status(3)), expected_id=4)
    with pytest.raises(PacketError, match="broadcast"):
        ft.decode_status(ft.decode(ft.ping(ft.BROADCAST_ID)))


def test_stream_parser():
    reply = ft.status(1, 0, h("FF FF"))  # a header inside the params, no stuffing in this protocol
    packet, consumed = ft.find_packet(b"\x00\xff\xff\xff" + reply + b"\x00")
    assert packet == Packet(1, 0, h("FF FF")) and consumed == 4 + len(reply)
    assert ft.find_packet(reply[:-1]) == (None, 0)
    assert ft.find_packet(b"\x01\x02\xff") == (None, 2)
    bad = bytearray(reply)
    bad[-1] ^= 0xFF
    with pytest.raises(ChecksumError) as info:
        ft.find_packet(bytes(bad))
    assert info.value.consumed == 1


def test_encoders_reject_out_of_range():
    with pytest.raises(EncodingError):
        ft.read(1, 256, 2)
    with pytest.raises(EncodingError):
        ft.ping(0xFF)
    with pytest.raises(EncodingError):
        ft.write(1, 0, bytes(300))
    with pytest.raises(PacketError):
        ft.decode(b"\xff\xff\x01\x02\x01")
