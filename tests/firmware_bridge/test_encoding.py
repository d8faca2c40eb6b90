"""Pure integer encodings: sign-magnitude, two's complement, little-endian bytes, ticks <-> rad."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import encoding as enc
from firmware_bridge.errors import BridgeError, EncodingError


@pytest.mark.parametrize("value, bit, raw", [
    (0, 15, 0x0000), (5, 15, 0x0005), (-5, 15, 0x8005), (-1, 10, 0x0401), (1023, 10, 0x03FF),
    (-1023, 10, 0x07FF), (-2047, 11, 0x0FFF),
])
def test_sign_magnitude_vectors(value, bit, raw):
    assert enc.encode_sign_magnitude(value, bit) == raw
    assert enc.decode_sign_magnitude(raw, bit) == value


def test_sign_magnitude_rejects_too_large_and_ignores_bits_above_the_sign():
    with pytest.raises(EncodingError, match="clip to"):
        enc.encode_sign_magnitude(1024, 10)
    with pytest.raises(EncodingError):
        enc.encode_sign_magnitude(-1024, 10)
    assert enc.decode_sign_magnitude(0xFC05, 10) == -5


@given(st.integers(1, 31).flatmap(lambda bit: st.tuples(st.just(bit), st.integers(-(2**bit - 1), 2**bit - 1))))
def test_sign_magnitude_round_trip(bit_value):
    bit, value = bit_value
    raw = enc.encode_sign_magnitude(value, bit)
    assert 0 <= raw < 2 ** (bit + 1)
    assert enc.decode_sign_magnitude(raw, bit) == value


@pytest.mark.parametrize("value, size, raw", [
    (-1, 1, 0xFF), (-1, 4, 0xFFFFFFFF), (-128, 1, 0x80), (127, 1, 0x7F), (-2, 2, 0xFFFE), (1000, 4, 1000),
])
def test_twos_complement_vectors(value, size, raw):
    assert enc.encode_twos_complement(value, size) == raw
    assert enc.decode_twos_complement(raw, size) == value


@pytest.mark.parametrize("value, size", [(128, 1), (-129, 1), (2**31, 4), (-(2**31) - 1, 4)])
def test_twos_complement_rejects_out_of_range(value, size):
    with pytest.raises(EncodingError, match="outside"):
        enc.encode_twos_complement(value, size)


@given(st.sampled_from(enc.REGISTER_SIZES).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(-(2 ** (8 * n - 1)), 2 ** (8 * n - 1) - 1))))
def test_twos_complement_round_trip_through_bytes(size_value):
    size, value = size_value
    data = enc.int_to_bytes(enc.encode_twos_complement(value, size), size)
    assert len(data) == size
    assert enc.decode_twos_complement(enc.bytes_to_int(data), size) == value


def test_little_endian_bytes():
    assert enc.int_to_bytes(0x1234, 2) == b"\x34\x12"
    assert enc.int_to_bytes(512, 4) == b"\x00\x02\x00\x00"
    assert enc.bytes_to_int(b"\xa6\x00\x00\x00") == 166


@pytest.mark.parametrize("value, size", [(256, 1), (-1, 2), (2**32, 4), (1, 3)])
def test_int_to_bytes_rejects(value, size):
    with pytest.raises(EncodingError) as info:
        enc.int_to_bytes(value, size)
    assert isinstance(info.value, BridgeError) and isinstance(info.value, ValueError)


def test_bytes_to_int_rejects_odd_sizes():
    with pytest.raises(EncodingError):
        enc.bytes_to_int(b"\x00\x00\x00")


def test_ticks_radians():
    assert enc.ticks_to_radians(1024, 4096) == pytest.approx(math.pi / 2)
    assert enc.ticks_to_radians(1024, 4096, direction=-1, offset=0.5) == pytest.approx(0.5 - math.pi / 2)
    assert enc.radians_to_ticks(math.pi, 4096) == 2048
    assert enc.radians_to_ticks(0.5 - math.pi / 2, 4096, direction=-1, offset=0.5) == 1024


@given(st.integers(-100_000, 100_000), st.sampled_from([1, -1]), st.floats(-4, 4))
def test_ticks_round_trip(ticks, direction, offset):
    angle = enc.ticks_to_radians(ticks, 4096, direction, offset)
    assert enc.radians_to_ticks(angle, 4096, direction, offset) == ticks


@pytest.mark.parametrize("kwargs", [{"direction": 0}, {"direction": 2}])
def test_ticks_reject_bad_direction(kwargs):
    with pytest.raises(EncodingError, match="direction"):
        enc.ticks_to_radians(0, 4096, **kwargs)


def test_radians_reject_nan():
    with pytest.raises(EncodingError, match="finite"):
        enc.radians_to_ticks(float("nan"), 4096)
