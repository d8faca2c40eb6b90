"""Cross-check against the vendors' own Python SDKs (PyPI `dynamixel-sdk`, `feetech-servo-sdk`).

A fake port handler records what the SDK writes and feeds it replies built by our
encoders, so both directions are compared: our instruction bytes equal the SDK's, and the
SDK accepts our status packets and decodes the same values from them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import dynamixel as dxl
from firmware_bridge.protocol import feetech as ft

dynamixel_sdk = pytest.importorskip("dynamixel_sdk")
scservo_sdk = pytest.importorskip("scservo_sdk")


class FakePort:
    """The subset of the SDKs' PortHandler that their packet handlers call."""

    def __init__(self, replies: bytes = b""):
        self.written: list[bytes] = []
        self.replies = bytearray(replies)

    @property
    def is_using(self) -> bool:
        return False  # one call at a time here; the SDK's Tx-only calls leave it set

    @is_using.setter
    def is_using(self, value: bool) -> None:
        pass

    def clearPort(self) -> None:  # noqa: N802 (SDK naming)
        pass

    def writePort(self, packet) -> int:  # noqa: N802
        self.written.append(bytes(packet))
        return len(packet)

    def readPort(self, length: int) -> bytes:  # noqa: N802
        out, self.replies = bytes(self.replies[:length]), self.replies[length:]
        return out

    def setPacketTimeout(self, packet_length: int) -> None:  # noqa: N802
        pass

    def setPacketTimeoutMillis(self, msec: float) -> None:  # noqa: N802
        pass

    def isPacketTimeout(self) -> bool:  # noqa: N802
        return True  # nothing more will arrive than what is queued


def _dxl() -> object:
    return dynamixel_sdk.PacketHandler(2.0)


def _ft() -> object:
    return scservo_sdk.PacketHandler(0)


ids = st.integers(0, 252)
addresses = st.integers(0, 1023)
# The Python dynamixel-sdk drops its own byte stuffing on transmit (addStuffing rebinds a
# local list), so instruction cross-checks use data without an FF FF FD run.
plain = st.binary(min_size=1, max_size=8).filter(lambda b: b"\xff\xff\xfd" not in b)


@settings(max_examples=40, deadline=None)
@given(ids, addresses, st.integers(1, 4), plain)
def test_dynamixel_instruction_bytes_equal_the_sdk(servo_id, address, length, data):
    port, ph = FakePort(), _dxl()
    ph.readTx(port, servo_id, address, length)
    ph.writeTxOnly(port, servo_id, address, len(data), list(data))
    ph.regWriteTxOnly(port, servo_id, address, len(data), list(data))
    ph.ping(port, servo_id)
    ph.reboot(port, servo_id)
    assert port.written == [dxl.read(servo_id, address, length), dxl.write(servo_id, address, data),
                            dxl.reg_write(servo_id, address, data), dxl.ping(servo_id), dxl.reboot(servo_id)]


@settings(max_examples=40, deadline=None)
@given(st.lists(ids, min_size=1, max_size=6, unique=True), addresses, st.integers(1, 4), st.data())
def test_dynamixel_group_bytes_equal_the_sdk(servo_ids, address, length, draw):
    value = st.binary(min_size=length, max_size=length).filter(lambda b: b"\xff\xff\xfd" not in b)
    values = {i: draw.draw(value) for i in servo_ids}  # ids <= 252 never complete an FF FF FD run
    port, ph = FakePort(), _dxl()
    ph.syncReadTx(port, address, length, servo_ids, len(servo_ids), False)
    params = [b for i, v in values.items() for b in (i, *v)]
    ph.syncWriteTxOnly(port, address, length, params, len(params))
    bulk = [b for i in servo_ids for b in (i, address & 0xFF, address >> 8, length, 0)]
    ph.bulkReadTx(port, bulk, len(bulk), False)
    assert port.written == [dxl.sync_read(address, length, servo_ids), dxl.sync_write(address, length, values),
                            dxl.bulk_read([(i, address, length) for i in servo_ids])]


@settings(max_examples=40, deadline=None)
@given(ids, st.integers(0, 2**32 - 1))
def test_dynamixel_sdk_decodes_our_status_packets(servo_id, value):
    # Values with FF FF FD inside exercise our stuffing against the SDK's unstuffing.
    replies = dxl.status(servo_id, 0, value.to_bytes(4, "little"))
    data, result, error = _dxl().read4ByteTxRx(FakePort(replies), servo_id, 132)
    assert (data, result, error) == (value, dynamixel_sdk.COMM_SUCCESS, 0)
    model, result, _ = _dxl().ping(FakePort(dxl.status(servo_id, 0, bytes([0xB0, 0x04, 0x2E]))), servo_id)
    assert (model, result) == (1200, dynamixel_sdk.COMM_SUCCESS)


def test_dynamixel_sdk_sees_our_error_byte():
    _, result, error = _dxl().read1ByteTxRx(FakePort(dxl.status(3, 0x84, b"\x00")), 3, 146)
    assert result == dynamixel_sdk.COMM_SUCCESS and error == 0x84


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 252), st.integers(0, 255), st.integers(1, 4), st.binary(min_size=1, max_size=8))
def test_feetech_instruction_bytes_equal_the_sdk(servo_id, address, length, data):
    port, ph = FakePort(), _ft()
    ph.readTx(port, servo_id, address, length)
    ph.writeTxOnly(port, servo_id, address, len(data), list(data))
    ph.regWriteTxOnly(port, servo_id, address, len(data), list(data))
    ph.action(port, servo_id)
    assert port.written == [ft.read(servo_id, address, length), ft.write(servo_id, address, data),
                            ft.reg_write(servo_id, address, data), ft.action(servo_id)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 252), min_size=1, max_size=6, unique=True), st.integers(0, 255),
       st.integers(1, 4), st.data())
def test_feetech_sync_bytes_equal_the_sdk(servo_ids, address, length, draw):
    values = {i: draw.draw(st.binary(min_size=length, max_size=length)) for i in servo_ids}
    port, ph = FakePort(), _ft()
    ph.syncReadTx(port, address, length, servo_ids, len(servo_ids))
    params = [b for i, v in values.items() for b in (i, *v)]
    ph.syncWriteTxOnly(port, address, length, params, len(params))
    assert port.written == [ft.sync_read(address, length, servo_ids), ft.sync_write(address, length, values)]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 252), st.integers(0, 0xFFFF))
def test_feetech_sdk_decodes_our_replies(servo_id, value):
    reply = ft.status(servo_id, 0, value.to_bytes(2, "little"))
    data, result, error = _ft().read2ByteTxRx(FakePort(reply), servo_id, 56)
    assert (data, result, error) == (value, scservo_sdk.COMM_SUCCESS, 0)
    # the SDK's ping is a ping plus a read of the model number (address 3)
    port = FakePort(ft.status(servo_id) + ft.status(servo_id, 0, (777).to_bytes(2, "little")))
    model, result, _ = _ft().ping(port, servo_id)
    assert (model, result) == (777, scservo_sdk.COMM_SUCCESS)
    assert port.written == [ft.ping(servo_id), ft.read(servo_id, 3, 2)]
