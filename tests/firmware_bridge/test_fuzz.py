"""Fuzzing both decoders and stream parsers: random bytes, truncations, bit flips, garbage.

Whatever arrives, the parsers raise nothing but the `PacketError` family, always make
progress (no infinite loop), and find valid packets hidden in garbage.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import ChecksumError, PacketError
from firmware_bridge.protocol import Packet
from firmware_bridge.protocol import dynamixel as dxl
from firmware_bridge.protocol import feetech as ft

PROTOCOLS = [dxl, ft]
protocols = pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.__name__.rsplit(".", 1)[-1])


def drain(proto: ModuleType, buffer: bytes) -> list[Packet]:
    """Every packet in a complete buffer, as a driver would get them: on a checksum error
    drop what the error says, and when the parser waits for bytes that will never come
    (the buffer is all there is) drop one byte. Fails on an infinite loop."""
    packets, buffer = [], bytes(buffer)
    for _ in range(2 * len(buffer) + 2):
        try:
            packet, consumed = proto.find_packet(buffer)
        except ChecksumError as error:
            packet, consumed = None, error.consumed
            assert consumed > 0
        assert 0 <= consumed <= len(buffer)
        if packet is not None:
            packets.append(packet)
        elif consumed == 0:
            if not buffer:
                return packets
            consumed = 1  # end of stream: give up on the partial packet at the front
        buffer = buffer[consumed:]
    raise AssertionError("the parser made no progress")


def packets_of(proto: ModuleType) -> st.SearchStrategy[tuple[Packet, bytes]]:
    """A random valid packet and its bytes."""
    instructions = st.sampled_from(list(dxl.Instruction)) if proto is dxl else st.integers(0, 255)
    return st.builds(
        lambda i, ins, params: (Packet(i, int(ins), params), proto.encode(i, ins, params)),
        st.integers(0, 252), instructions, st.binary(max_size=24),
    )


def garbage_without(byte: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=24).map(lambda b: b.replace(bytes([byte]), b""))


@protocols
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(proto, data):
    for packet in drain(proto, data):
        try:
            proto.decode_status(packet)
        except PacketError:
            pass
    try:
        proto.decode(data)
    except PacketError:
        pass


@protocols
@given(data=st.data())
def test_round_trip_and_truncations(proto, data):
    packet, raw = data.draw(packets_of(proto))
    assert proto.decode(raw) == packet
    assert proto.find_packet(raw) == (packet, len(raw))
    for cut in range(len(raw)):
        assert proto.find_packet(raw[:cut]) == (None, 0)
        with pytest.raises(PacketError):
            proto.decode(raw[:cut])


@protocols
@given(data=st.data())
def test_bit_flips_are_caught(proto, data):
    packet, raw = data.draw(packets_of(proto))
    bit = data.draw(st.integers(0, 8 * len(raw) - 1))
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    found = drain(proto, bytes(flipped))
    assert packet not in found
    if proto is dxl:  # CRC-16 catches every single-bit error
        assert found == []


@protocols
@given(data=st.data())
def test_packets_are_found_in_garbage(proto, data):
    pieces = data.draw(st.lists(packets_of(proto), min_size=1, max_size=4))
    noise = garbage_without(0xFF)
    stream = data.draw(noise)
    for _, raw in pieces:
        stream += raw + data.draw(noise)
    assert drain(proto, stream) == [packet for packet, _ in pieces]


@protocols
@given(data=st.data())
def test_a_cut_packet_before_a_whole_one(proto, data):
    """After a lost byte or a reset, a partial frame precedes the next whole one.

    The whole packet is found, unless a frame that begins in the cut and runs into it
    passes the check: the cut's lost bytes may be the ones the whole packet starts with
    (a CRC ending in FF), or a checksum may match by chance (1 in 256 for Feetech, 1 in
    65536 for Dynamixel). The stream then truly holds that frame, and the driver sees a
    reply from the wrong servo or with the wrong length, which it reports.
    """
    (_, cut_raw), (packet, raw) = data.draw(packets_of(proto)), data.draw(packets_of(proto))
    cut = cut_raw[:data.draw(st.integers(1, len(cut_raw) - 1))]
    stream = cut + raw
    found = drain(proto, stream)
    if packet in found:
        assert found == [packet] or proto is ft  # Feetech: a false frame inside the cut may come first
    else:
        assert any(frame_across(proto, stream, len(cut), false) for false in found)


def frame_across(proto: ModuleType, stream: bytes, boundary: int, packet: Packet) -> bool:
    """Whether `packet` is the decoding of some frame of `stream` that begins before
    `boundary` and ends after it."""
    for start in range(boundary):
        for end in range(boundary + 1, len(stream) + 1):
            try:
                if proto.decode(stream[start:end]) == packet:
                    return True
            except PacketError:
                pass
    return False
