"""ServoBus against emulated chains: real protocol bytes over a real pseudo-terminal."""

from __future__ import annotations

import time

import numpy as np
import pytest

import robots
from firmware_bridge.bus import ServoBus
from firmware_bridge.emulator import EmulatedChain, NoFaults
from firmware_bridge.errors import NotConnected, ServoError, ServoTimeout, WrongServo
from firmware_bridge.link import Timing
from firmware_bridge.tables import Reg

ROBOTS = ("so100", "koch")  # Feetech STS3215; Dynamixel XL430 + XL330 (load and current)
START = np.array([-0.6, -0.2, 0.1, 0.4, 0.8, 0.2])
# The emulator shares this interpreter (and CI cores): a wider margin than real servos need.
TIMING = Timing(margin=0.02)


class Rewrite(NoFaults):
    """Replies of `servo_id` replaced by `make(reply)`, `times` times (all when None)."""

    def __init__(self, servo_id: int, make, times: int | None = None):
        self.servo_id, self.make, self.times = servo_id, make, times

    def outgoing(self, servo_id: int, reply: bytes) -> tuple[bytes, float]:
        if servo_id != self.servo_id or self.times == 0:
            return reply, 0.0
        if self.times is not None:
            self.times -= 1
        return self.make(reply), 0.0


@pytest.fixture(params=ROBOTS)
def rig(request):
    spec = robots.load(request.param).bus
    with EmulatedChain.from_bus_spec(spec, positions_rad=START) as chain:
        bus = ServoBus(spec, chain.port, TIMING)
        bus.connect()
        yield chain, bus
        bus.disconnect()


def test_ping_reports_each_model_number(rig):
    chain, bus = rig
    assert {i: bus.ping(i) for i in bus.ids} == {i: m.model_number for i, m in bus.models.items()}


def test_read_state_matches_the_emulated_servos(rig):
    chain, bus = rig
    with chain.lock:
        chain.servo(2).temperature = 41.2
        chain.servo(5).temperature = 55.0
    time.sleep(0.01)
    state = bus.read_state()
    with chain.lock:
        expected = {
            "positions": [s.position_rad() for s in chain.servos],
            "temperatures": [s.get(Reg.PRESENT_TEMPERATURE) for s in chain.servos],
            "voltages": [s.get(Reg.PRESENT_VOLTAGE) * s.model.voltage_unit for s in chain.servos],
        }
    assert state.ids == bus.ids
    np.testing.assert_allclose(state.positions, START, atol=2 * np.pi / 4096)
    np.testing.assert_allclose(state.positions, expected["positions"])
    np.testing.assert_allclose(state.temperatures, expected["temperatures"])
    assert state.temperatures[1] == 41 and state.temperatures[4] == 55
    np.testing.assert_allclose(state.voltages, expected["voltages"])
    np.testing.assert_allclose(state.velocities, 0.0)
    np.testing.assert_allclose(state.loads, 0.0)  # torque is off at power-up
    assert state.ok and state.errors == ((),) * 6


def test_write_targets_moves_the_servos_to_their_goals(rig):
    chain, bus = rig
    bus.torque(True)
    goals = START[::-1].copy()
    sent = bus.write_targets(goals)
    np.testing.assert_allclose(sent, goals, atol=np.pi / 4096)
    time.sleep(0.05)
    moving = bus.read_state()
    assert np.all(np.abs(moving.positions - START) > 1e-3)  # on the way
    assert np.any(np.abs(moving.loads) > 0) and np.any(np.abs(moving.velocities) > 0.1)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        state = bus.read_state()
        if np.allclose(state.positions, sent, atol=0.01):
            break
        time.sleep(0.02)
    np.testing.assert_allclose(state.positions, sent, atol=0.01)


def test_torque_off_stops_tracking(rig):
    chain, bus = rig
    bus.torque(True)
    bus.write_targets(START + 1.0)
    time.sleep(0.05)
    bus.torque(False)
    stopped = bus.read_state().positions
    time.sleep(0.2)
    state = bus.read_state()
    np.testing.assert_allclose(state.positions, stopped, atol=0.01)
    assert np.all(np.abs(state.positions - (START + 1.0)) > 0.1)
    assert bus.sync_read(Reg.TORQUE_ENABLE) == {i: 0 for i in bus.ids}


def test_a_silent_servo_fails_clearly_and_quickly(rig):
    chain, bus = rig
    chain.servo(3).silent = True
    start = time.monotonic()
    with pytest.raises(ServoTimeout) as info:
        bus.read_state()
    assert time.monotonic() - start < 0.25  # 3 attempts of ~25 ms here; ~5 ms with the default margin
    assert info.value.servo_ids == (3,) and "servo(s) 3 did not answer" in str(info.value)
    with pytest.raises(ServoTimeout):
        bus.ping(42)
    chain.servo(3).silent = False
    assert bus.read_state().ok


def test_garbage_on_the_wire_is_survived(rig):
    chain, bus = rig
    chain.inject(bytes(range(0, 256, 7)) + b"\xff\xff\xfd\x00\x01\x07\x00" + b"\xff\xff\x01\x09")
    assert bus.read_state().ok
    # a corrupted reply is asked again
    chain.faults = Rewrite(4, lambda reply: reply[:-1] + bytes([reply[-1] ^ 0x5A]), times=1)
    np.testing.assert_allclose(bus.read_state().positions, START, atol=2 * np.pi / 4096)
    # a reply with noise before it is found behind the noise
    chain.faults = Rewrite(2, lambda reply: b"\x00\xff\x13" + reply, times=1)
    assert bus.read(Reg.PRESENT_TEMPERATURE, 2) == 25


def test_a_reply_from_another_id_raises_wrong_servo(rig):
    chain, bus = rig
    codec = bus.codec

    def as_servo_9(reply: bytes) -> bytes:
        status = codec.decode_status(codec.find_packet(reply)[0], None)
        return codec.status(9, status.error, status.params)

    chain.faults = Rewrite(2, as_servo_9)
    with pytest.raises(WrongServo) as info:
        bus.read(Reg.PRESENT_POSITION, 2)
    assert (info.value.expected_id, info.value.found_id) == (2, 9)


def test_lifecycle_guards(rig):
    chain, bus = rig
    bus.disconnect()
    bus.disconnect()
    with pytest.raises(NotConnected):
        bus.read_state()
    with ServoBus(bus.spec, chain.port, TIMING) as again:
        assert again.is_connected
    assert not again.is_connected


def test_failsafes_and_protections(rig):
    chain, bus = rig
    bus.configure_failsafes(watchdog=0.06)
    codec = bus.codec
    mask = {i: bus.read(codec.shutdown_reg, i) for i in bus.ids}
    assert all(mask[i] == sum(1 << b for b, n in bus.models[i].error_bits.items() if n in codec.shutdown_flags)
               for i in bus.ids)
    bus.torque(True)
    with chain.lock:
        chain.servo(5).temperature = 90.0  # above the 70 degC limit
    time.sleep(0.01)
    state = bus.read_state()
    assert "overheating" in state.errors[4] and not state.ok
    assert bus.read(Reg.TORQUE_ENABLE, 5) == 0  # the shutdown mask cut its torque
    if codec.watchdog_reg is not None:  # Dynamixel: silence trips the bus watchdog
        time.sleep(0.15)
        assert bus.read(Reg.BUS_WATCHDOG, 1) == -1
        with pytest.raises(ServoError):  # EEPROM is locked while torque is on
            bus.write(Reg.RETURN_DELAY_TIME, 1, 0)
