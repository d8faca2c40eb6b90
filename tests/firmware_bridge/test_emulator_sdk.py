"""The vendors' own SDKs (PyPI `feetech-servo-sdk`, `dynamixel-sdk`) talk to the emulated
chains on their pty path, as they would to a USB adapter."""

from __future__ import annotations

import numpy as np
import pytest

import robots
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.tables import Reg

scservo_sdk = pytest.importorskip("scservo_sdk")
dynamixel_sdk = pytest.importorskip("dynamixel_sdk")

START = np.array([0.3, -0.4, 0.5, 1.0, -1.2, 0.25])  # no FF FF FD in the replies (dynamixel-sdk 4.1.0)


def _raw(servo, reg: Reg) -> int:
    """A register as the SDKs return it: unsigned, signs not decoded."""
    register = servo.model.register(reg)
    return int.from_bytes(servo.read(register.address, register.size), "little")


def _open(sdk, port: str, baudrate: int):
    handler = sdk.PortHandler(port)
    assert handler.openPort() and handler.setBaudRate(baudrate)
    return handler


def test_feetech_sdk_pings_and_reads_the_emulated_so100():
    spec = robots.load("so100").bus
    with EmulatedChain.from_bus_spec(spec, positions_rad=START) as chain:
        port = _open(scservo_sdk, chain.port, spec.baudrate)
        try:
            packets = scservo_sdk.PacketHandler(0)
            for servo in chain.servos:
                model, result, error = packets.ping(port, servo.id)
                assert (model, result, error) == (777, scservo_sdk.COMM_SUCCESS, 0)
                position, result, _ = packets.read2ByteTxRx(port, servo.id, 56)
                assert result == scservo_sdk.COMM_SUCCESS and position == _raw(servo, Reg.PRESENT_POSITION)
            group = scservo_sdk.GroupSyncRead(port, packets, 56, 2)
            for servo in chain.servos:
                group.addParam(servo.id)
            assert group.txRxPacket() == scservo_sdk.COMM_SUCCESS
            assert [group.getData(s.id, 56, 2) for s in chain.servos] == [_raw(s, Reg.PRESENT_POSITION) for s in chain.servos]
        finally:
            port.closePort()


def test_dynamixel_sdk_pings_reads_and_bulk_reads_the_emulated_koch():
    spec = robots.load("koch").bus
    with EmulatedChain.from_bus_spec(spec, positions_rad=START) as chain:
        port = _open(dynamixel_sdk, chain.port, spec.baudrate)
        try:
            packets = dynamixel_sdk.PacketHandler(2.0)
            for servo in chain.servos:
                model, result, error = packets.ping(port, servo.id)
                assert (model, result, error) == (servo.model.model_number, dynamixel_sdk.COMM_SUCCESS, 0)
                position, result, _ = packets.read4ByteTxRx(port, servo.id, 132)
                assert result == dynamixel_sdk.COMM_SUCCESS and position == _raw(servo, Reg.PRESENT_POSITION)
            bulk = dynamixel_sdk.GroupBulkRead(port, packets)
            for servo in chain.servos:
                assert bulk.addParam(servo.id, 146, 1)  # present temperature
            assert bulk.txRxPacket() == dynamixel_sdk.COMM_SUCCESS
            assert [bulk.getData(s.id, 146, 1) for s in chain.servos] == [25] * 6
        finally:
            port.closePort()
