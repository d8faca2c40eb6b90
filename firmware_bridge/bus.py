"""`ServoBus`: one driver for every servo bus in robot.toml, over any `Transport`.

    with ServoBus(robots.load("so100").bus, "/dev/ttyACM0") as bus:
        state = bus.read_state()            # one sync read per cycle
        bus.write_targets(state.positions)  # one sync write

The protocol (Feetech STS, Dynamixel 2.0) comes from `BusSpec.protocol` through
`codec.CODECS`; each servo's control table from its model name. Angles are joint angles
[rad]: each servo's calibration (`firmware_bridge.calibration`: homing offset, direction,
range of this physical arm; by default robot.toml's direction and offset) is applied here,
in one place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType

import numpy as np

from firmware_bridge.calibration import Calibration
from firmware_bridge.codec import codec_for
from firmware_bridge.errors import BridgeError, NotConnected, ServoError
from firmware_bridge.link import Link, Timing
from firmware_bridge.protocol.packet import Status
from firmware_bridge.state import Block, BusState, block_holding, blocks_for
from firmware_bridge.tables import Reg, Register, ServoModel, table_for
from firmware_bridge.transport import SerialTransport, Transport
from robots.spec import BusSpec, ServoSpec

TransportFactory = Callable[[str, int], Transport]


class ServoBus:
    """A chain of servos on one serial port, as described by a robot's `BusSpec`.

    Args:
        spec: protocol, baud rate and servos (ids, models, directions, offsets).
        port: serial port path (a USB adapter, or the pty of an emulated chain).
        timing: reply timeouts and retries.
        open_transport: `(port, baudrate) -> Transport`; pyserial by default.
        calibration: ticks <-> joint angles of this arm; `Calibration.from_bus(spec)`
            (robot.toml's directions and offsets) by default.
    """

    def __init__(self, spec: BusSpec, port: str, timing: Timing = Timing(),
                 open_transport: TransportFactory = SerialTransport, calibration: Calibration | None = None):
        self.spec, self.port, self.timing = spec, port, timing
        self.codec = codec_for(spec.protocol)
        self._open_transport = open_transport
        self.servos: tuple[ServoSpec, ...] = spec.servos
        self.ids: tuple[int, ...] = tuple(s.id for s in spec.servos)
        self.models: dict[int, ServoModel] = {s.id: table_for(s.model) for s in spec.servos}
        self.calibration = calibration or Calibration.from_bus(spec)
        self._cal = self.calibration.for_bus(spec)
        models = list(self.models.values())
        self._state_blocks: tuple[Block, ...] = blocks_for(models, self.codec.state_regs)
        # an instruction failed (Dynamixel error number); Feetech error bits are hardware state
        self._fail_mask = 0 if self.codec.error_bits_in_status else 0xFF & ~self.codec.alert_mask
        self._link: Link | None = None

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._link is not None

    def connect(self, check: bool = True) -> None:
        """Open the port; with `check`, ping every servo and compare its model number with
        robot.toml (raises `ServoTimeout` for a silent one, `BridgeError` for a mismatch)."""
        if self._link is not None:
            raise BridgeError(f"the bus on {self.port!r} is already connected")
        self._link = Link(self._open_transport(self.port, self.spec.baudrate), self.codec,
                          self.spec.baudrate, self.timing)
        if check:
            try:
                for servo_id, model in self.models.items():
                    number = self.ping(servo_id)
                    if number != model.model_number:
                        raise BridgeError(
                            f"servo {servo_id} reports model number {number}, robot.toml says {model.name} "
                            f"({model.model_number}). Fix: correct the model in robot.toml or the servo id")
            except BridgeError:
                self.disconnect()
                raise

    def disconnect(self) -> None:
        """Close the port. Torque is left as it is: an arm that falls when limp must be
        brought to rest by the caller (see the fault monitor) before it is released."""
        if self._link is not None:
            self._link.transport.close()
            self._link = None

    def __enter__(self) -> ServoBus:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.disconnect()

    @property
    def missed_replies(self) -> int:
        """Replies that a request waited for in vain since connect() (each one was asked
        again, or ended in a `ServoTimeout`): the fault monitor turns its growth into retry events."""
        return self._link.missed if self._link is not None else 0

    def _connected(self, action: str) -> Link:
        if self._link is None:
            raise NotConnected(self.port, action)
        return self._link

    # --- single servos -----------------------------------------------------------------
    def ping(self, servo_id: int) -> int:
        """Model number that servo `servo_id` reports; `ServoTimeout` if it stays silent."""
        link = self._connected("ping")
        status = link.request(lambda ids: self.codec.ping(ids[0]), [servo_id], self.codec.ping_data,
                              "a ping")[servo_id]
        self._check(status)
        if self.codec.ping_data >= 2:
            return int.from_bytes(status.params[:2], "little")
        return self._read_raw(servo_id, self.codec.model_number_address, 2, "model number")

    def read(self, reg: Reg, servo_id: int) -> int:
        """Value of `reg` of one servo, in the register's raw unit (signed where it is)."""
        register = self._register(reg, servo_id)
        return register.decode(self._read_bytes(servo_id, register.address, register.size, reg.name))

    def write(self, reg: Reg, servo_id: int, value: int) -> None:
        """Write `value` (raw unit) to `reg` of one servo and wait for its acknowledgement."""
        link = self._connected(f"write {reg.name}")
        register = self._register(reg, servo_id)
        packet = self.codec.write(servo_id, register.address, register.encode(value))
        self._check(link.request(lambda ids: packet, [servo_id], 0, f"a write of {reg.name}")[servo_id])

    def _read_bytes(self, servo_id: int, address: int, size: int, what: str) -> bytes:
        link = self._connected(f"read {what}")
        status = link.request(lambda ids: self.codec.read(ids[0], address, size), [servo_id], size,
                              f"a read of {what}")[servo_id]
        self._check(status)
        return status.params

    def _read_raw(self, servo_id: int, address: int, size: int, what: str) -> int:
        return int.from_bytes(self._read_bytes(servo_id, address, size, what), "little")

    # --- groups ------------------------------------------------------------------------
    def sync_read(self, reg: Reg, ids: Sequence[int] | None = None,
                  give_up_at: float | None = None) -> dict[int, int]:
        """{id: value of `reg`} for `ids` (all servos by default), in one sync read (lost
        replies asked again only until `give_up_at`, see `Link.request`)."""
        ids = list(self.ids if ids is None else ids)
        register = self._common_register(reg, ids)
        statuses = self._sync_read(register.address, register.size, ids, reg.name, give_up_at)
        return {i: register.decode(statuses[i].params) for i in ids}

    def sync_write(self, reg: Reg, values: Mapping[int, int]) -> None:
        """Write {id: value} to `reg` in one sync write (no reply)."""
        link = self._connected(f"sync write {reg.name}")
        register = self._common_register(reg, list(values))
        data = {i: register.encode(int(v)) for i, v in values.items()}
        link.send(self.codec.sync_write(register.address, register.size, data))

    def _sync_read(self, address: int, length: int, ids: list[int], what: str,
                   give_up_at: float | None = None) -> dict[int, Status]:
        link = self._connected(f"sync read {what}")
        statuses = link.request(lambda missing: self.codec.sync_read(address, length, missing), ids, length,
                                f"a sync read of {what}", give_up_at)
        for status in statuses.values():
            self._check(status)
        return statuses

    def state_read_timeout(self, n_servos: int | None = None) -> float:
        """Reply timeout [s] of one attempt of `read_state` that asks `n_servos` servos (default:
        all of them; 1: asking one lost reply again): what a lost reply costs a control step."""
        link = self._connected("time a state read")
        ids = list(self.ids)[:n_servos or len(self.ids)]
        return sum(link.timeout(len(self.codec.sync_read(b.address, b.length, ids)), b.length, len(ids))
                   for b in self._state_blocks)

    # --- robot-level -------------------------------------------------------------------
    def read_state(self, give_up_at: float | None = None) -> BusState:
        """Positions, velocities, loads, voltages, temperatures and error bits of every servo:
        one sync read per block of adjacent registers (one per cycle on STS3215 and X series).
        Lost replies are asked again only until `give_up_at` (see `Link.request`)."""
        ids = list(self.ids)
        data: dict[Block, dict[int, Status]] = {
            b: self._sync_read(b.address, b.length, ids, "the servo state", give_up_at) for b in self._state_blocks}
        stamp = time.monotonic()
        n = len(ids)
        pos, vel, load, volt, temp = (np.zeros(n) for _ in range(5))
        bits = np.zeros(n, np.uint8)
        for k, (servo, cal) in enumerate(zip(self.servos, self._cal)):
            model = self.models[servo.id]

            def value(reg: Reg) -> int:
                block = block_holding(self._state_blocks, model, reg)
                return model.register(reg).decode(block.slice(data[block][servo.id].params, model, reg))

            pos[k] = cal.to_radians(value(Reg.PRESENT_POSITION))
            vel[k] = cal.direction * value(Reg.PRESENT_VELOCITY) * model.velocity_unit
            load[k] = cal.direction * value(model.effort) * model.effort_unit
            volt[k] = value(Reg.PRESENT_VOLTAGE) * model.voltage_unit
            temp[k] = value(Reg.PRESENT_TEMPERATURE) * model.temperature_unit
            error_byte = 0
            for replies in data.values():
                error_byte |= replies[servo.id].error
            bits[k] = self._error_bits(servo.id, error_byte, value)
        errors = tuple(self.models[i].error_flags(int(b)) for i, b in zip(ids, bits))
        return BusState(tuple(ids), pos, vel, load, volt, temp, bits, errors, stamp)

    def _error_bits(self, servo_id: int, error_byte: int, value: Callable[[Reg], int]) -> int:
        """Hardware error bits: from the state block where it holds them, the reply error
        byte where it uses them, or a read of HARDWARE_ERROR_STATUS when a reply raises the alert."""
        bits = error_byte if self.codec.error_bits_in_status else 0
        if Reg.HARDWARE_ERROR_STATUS in self.codec.state_regs:
            bits |= value(Reg.HARDWARE_ERROR_STATUS)
        elif error_byte & self.codec.alert_mask:
            bits |= self.read(Reg.HARDWARE_ERROR_STATUS, servo_id)
        return bits & 0xFF

    def write_targets(self, positions_rad: Sequence[float] | np.ndarray) -> np.ndarray:
        """Send joint position targets [rad] (servo order of the spec) in one sync write.

        Returns:
            the targets actually sent [rad], i.e. after rounding to whole ticks.

        Raises:
            EncodingError: a target is not finite or beyond the goal register's range.
        """
        targets = np.asarray(positions_rad, dtype=float)
        if targets.shape != (len(self.servos),):
            raise BridgeError(f"write_targets got {targets.shape[0] if targets.ndim else 0} targets, the bus has "
                              f"{len(self.servos)} servos ({', '.join(s.joint for s in self.servos)})")
        ticks = {c.id: c.to_ticks(float(q)) for c, q in zip(self._cal, targets)}
        self.sync_write(Reg.GOAL_POSITION, ticks)
        return np.array([c.to_radians(ticks[c.id], unwrap=False) for c in self._cal])

    def torque(self, on: bool) -> None:
        """Enable or disable torque on every servo. Enabling first sets each goal to the
        present position, so the arm holds where it is instead of jumping to a stale goal."""
        if on:
            self.sync_write(Reg.GOAL_POSITION, self.sync_read(Reg.PRESENT_POSITION))
        self.sync_write(Reg.TORQUE_ENABLE, {i: int(on) for i in self.ids})

    def configure_failsafes(self, watchdog: float | None = 0.1) -> None:
        """Arm the servos' own protections. Call with torque off (EEPROM registers).

        - shutdown mask (Dynamixel Shutdown, Feetech Unloading Condition): torque is cut on
          the error bits named in `Codec.shutdown_flags` (overheating, overload ...);
        - bus watchdog (Dynamixel X only; Feetech has none): a servo that hears nothing for
          `watchdog` [s] (rounded up to 20 ms units, at most 127 units) stops and holds.
          The controller must then talk to every servo more often than that.
        """
        for servo_id, model in self.models.items():
            mask = sum(1 << bit for bit, name in model.error_bits.items() if name in self.codec.shutdown_flags)
            self._write_eeprom(self.codec.shutdown_reg, servo_id, mask)
            if self.codec.watchdog_reg is not None and self.codec.watchdog_reg in model.registers:
                self.write(self.codec.watchdog_reg, servo_id, 0)  # clears a tripped watchdog
                if watchdog:
                    units = min(127, max(1, math.ceil(watchdog / self.codec.watchdog_unit)))
                    self.write(self.codec.watchdog_reg, servo_id, units)

    def _write_eeprom(self, reg: Reg, servo_id: int, value: int) -> None:
        lock = self.codec.eeprom_lock
        if lock is not None:
            self.write(lock, servo_id, 0)
        self.write(reg, servo_id, value)
        if lock is not None:
            self.write(lock, servo_id, 1)

    # --- helpers -----------------------------------------------------------------------
    def _register(self, reg: Reg, servo_id: int) -> Register:
        model = self.models.get(servo_id)
        if model is None:
            raise BridgeError(f"servo {servo_id} is not on this bus (ids {list(self.ids)}); its model is unknown")
        return model.register(reg)

    def _common_register(self, reg: Reg, ids: Iterable[int]) -> Register:
        registers = {self._register(reg, i) for i in ids}
        if len(registers) != 1:
            raise BridgeError(f"{reg.name} sits at different addresses or sizes on servos {list(ids)}; "
                              "read or write them one by one")
        return registers.pop()

    def _check(self, status: Status) -> None:
        if status.error & self._fail_mask:
            raise ServoError(status.id, status.error, status.flags)
