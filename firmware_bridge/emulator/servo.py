"""One emulated servo: a control-table memory image (EEPROM and RAM bytes at the addresses
of its model's table), the protections it enforces, and its electrical / thermal state.

Motion itself comes from the chain's plant; a servo turns its goal into a setpoint that
moves at most at its velocity limit and runs ahead of the joint no further than its torque
limit allows, and reports load (from the tracking error), temperature (rising with load)
and voltage (sagging with the load on the whole chain).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge import encoding
from firmware_bridge.codec import Codec
from firmware_bridge.tables import Access, Area, Reg, Register, ServoModel, Signedness
from robots.spec import ServoSpec

# Dynamixel error numbers that a status packet reports (Feetech servos report none).
RANGE_ERROR, ACCESS_ERROR = 4, 7

FULL_LOAD_ERROR = 0.25  # tracking error [rad] at which a servo reports 100 % load
AMBIENT = 25.0  # [degC]
THERMAL_TAU = 120.0  # thermal time constant [s]
FULL_LOAD_RISE = 60.0  # steady temperature rise at 100 % load [degC]
SAG = 0.3  # supply voltage drop per unit of total chain load [V]


@dataclass(frozen=True)
class ServoPhysics:
    """Datasheet figures of a model: no-load speed [rad/s], supply [V], stall current [A]."""

    max_velocity: float
    supply: float
    stall_current: float


PHYSICS: dict[str, ServoPhysics] = {
    "sts3215": ServoPhysics(4.7, 7.4, 2.7),  # 0.222 s/60 deg at 7.4 V
    "xl330-m288": ServoPhysics(10.8, 5.0, 1.47),  # 103 rpm at 5 V
    "xl430-w250": ServoPhysics(6.0, 12.0, 1.4),  # 57 rpm at 12 V
    "xm430-w350": ServoPhysics(4.8, 12.0, 2.3),  # 46 rpm at 12 V
    "xm540-w270": ServoPhysics(3.1, 12.0, 4.4),  # 30 rpm at 12 V
}

# Factory values (raw units) where the emulator needs one other than 0.
_DEFAULTS: dict[Reg, int] = {
    Reg.FIRMWARE_VERSION: 46, Reg.MAX_POSITION_LIMIT: 4095, Reg.TEMPERATURE_LIMIT: 70,
    Reg.MAX_TORQUE_LIMIT: 1000, Reg.TORQUE_LIMIT: 1000, Reg.PWM_LIMIT: 885, Reg.GOAL_PWM: 885,
    Reg.ACCELERATION: 0, Reg.POSITION_P_GAIN: 32,
}


def _limits(r: Register) -> tuple[int, int]:
    """Smallest and largest value [raw] that a register can hold."""
    if r.encoding.kind is Signedness.SIGN_MAGNITUDE:
        magnitude = (1 << (r.encoding.sign_bit or 0)) - 1
        return -magnitude, magnitude
    if r.encoding.kind is Signedness.TWOS_COMPLEMENT:
        half = 1 << (8 * r.size - 1)
        return -half, half - 1
    return 0, (1 << (8 * r.size)) - 1


class EmulatedServo:
    """A servo's memory image and state.

    Args:
        spec: id, model, direction and offset (the joint <-> ticks mapping of robot.toml).
        codec: the bus protocol (status return level and delay defaults, shutdown register).
        baudrate: bus rate [bit/s], stored in the BAUD_RATE register.
    """

    def __init__(self, spec: ServoSpec, model: ServoModel, codec: Codec, baudrate: int):
        self.spec, self.model, self.codec = spec, model, codec
        self.physics = PHYSICS[model.name]
        self._layout = {reg: (r, *_limits(r)) for reg, r in model.registers.items()}
        size = max(r.address + r.size for r in model.registers.values())
        self.memory = bytearray(max(256, size))
        defaults = {**_DEFAULTS, Reg.MODEL_NUMBER: model.model_number, Reg.ID: spec.id,
                    Reg.BAUD_RATE: model.baud_rates.get(baudrate, 0),
                    Reg.RETURN_DELAY_TIME: codec.default_return_delay,
                    Reg.STATUS_RETURN_LEVEL: codec.write_reply_level,
                    Reg.OPERATING_MODE: model.operating_modes["position"],
                    Reg.VELOCITY_LIMIT: round(self.physics.max_velocity / model.velocity_unit),
                    Reg.MAX_VOLTAGE_LIMIT: round(1.4 * self.physics.supply / model.voltage_unit),
                    Reg.MIN_VOLTAGE_LIMIT: round(0.6 * self.physics.supply / model.voltage_unit),
                    codec.shutdown_reg: self._mask(codec.shutdown_flags)}
        for reg, value in defaults.items():
            if reg in model.registers:
                self.set(reg, value)
        self.temperature = AMBIENT  # [degC]
        self.voltage = self.physics.supply  # [V]
        self.load = 0.0  # [fraction of max torque], joint frame
        self.setpoint = 0.0  # [rad], joint frame
        self.last_heard = 0.0  # monotonic time of the last instruction for this servo [s]
        self.silent = False  # answers nothing (a disconnected servo, for tests and fault profiles)

    # --- registers ---------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.get(Reg.ID)

    def get(self, reg: Reg) -> int:
        r = self._layout[reg][0]
        return r.decode(bytes(self.memory[r.address:r.address + r.size]))

    def set(self, reg: Reg, value: int) -> None:
        """Store `value` (raw unit), clipped to what the register can hold."""
        r, low, high = self._layout[reg]
        self.memory[r.address:r.address + r.size] = r.encode(int(min(max(value, low), high)))

    def has(self, reg: Reg) -> bool:
        return reg in self.model.registers

    def read(self, address: int, length: int) -> bytes | None:
        """`length` bytes at `address`, or None beyond the table."""
        end = address + length
        return bytes(self.memory[address:end]) if end <= len(self.memory) else None

    def write(self, address: int, data: bytes) -> int:
        """Write bytes as an instruction does; returns a Dynamixel error number (0 when done)."""
        end = address + len(data)
        if end > len(self.memory):
            return RANGE_ERROR
        touched = [(reg, r) for reg, r in self.model.registers.items() if r.address < end and address < r.address + r.size]
        torque_on = self.get(Reg.TORQUE_ENABLE) == 1
        for reg, r in touched:
            eeprom_locked = r.area is Area.EEPROM and torque_on and self.codec.eeprom_lock is None
            if r.access is Access.R or eeprom_locked:
                return ACCESS_ERROR
            if reg in (Reg.GOAL_POSITION, Reg.GOAL_VELOCITY) and self.watchdog_tripped:
                return RANGE_ERROR
        self.memory[address:end] = data
        if any(reg is Reg.TORQUE_ENABLE for reg, _ in touched) and not torque_on:
            self.setpoint = self.position_rad()
        return 0

    def _mask(self, names: tuple[str, ...]) -> int:
        return sum(1 << bit for bit, name in self.model.error_bits.items() if name in names)

    # --- state -------------------------------------------------------------------------
    @property
    def torque_on(self) -> bool:
        return self.get(Reg.TORQUE_ENABLE) == 1

    @property
    def watchdog_tripped(self) -> bool:
        return self.has(Reg.BUS_WATCHDOG) and self.get(Reg.BUS_WATCHDOG) < 0

    def position_rad(self) -> float:
        return encoding.ticks_to_radians(self.get(Reg.PRESENT_POSITION), self.model.resolution,
                                         self.spec.direction, self.spec.offset)

    def goal_rad(self) -> float:
        return encoding.ticks_to_radians(self.get(Reg.GOAL_POSITION), self.model.resolution,
                                         self.spec.direction, self.spec.offset)

    def max_velocity(self) -> float:
        """Velocity limit [rad/s]: the model's, or a smaller profile / goal speed when set."""
        speed_reg = Reg.PROFILE_VELOCITY if self.has(Reg.PROFILE_VELOCITY) else Reg.GOAL_VELOCITY
        speed = abs(self.get(speed_reg)) * self.model.velocity_unit
        return min(self.physics.max_velocity, speed) if speed > 0 else self.physics.max_velocity

    def torque_fraction(self) -> float:
        """Torque limit as a fraction of the maximum torque."""
        if self.has(Reg.TORQUE_LIMIT):
            return self.get(Reg.TORQUE_LIMIT) / 1000.0
        return self.get(Reg.GOAL_PWM) / max(1, self.get(Reg.PWM_LIMIT))

    def advance_setpoint(self, dt: float, position: float) -> float:
        """Move the setpoint toward the goal by at most the velocity limit, and no further
        from the joint than the torque limit allows; returns it [rad]."""
        if not self.torque_on:
            self.setpoint = position
            return position
        limit = self.max_velocity() * dt
        step = min(max(self.goal_rad() - self.setpoint, -limit), limit)
        reach = self.torque_fraction() * FULL_LOAD_ERROR
        self.setpoint = min(max(self.setpoint + step, position - reach), position + reach)
        return self.setpoint

    def update(self, dt: float, position: float, velocity: float, chain_load: float, now: float) -> None:
        """Store the plant's joint state [rad, rad/s] in the present registers and advance
        load, temperature and voltage by `dt` [s]; `chain_load` sums |load| over the chain."""
        m, s = self.model, self.spec
        load = (self.setpoint - position) / FULL_LOAD_ERROR if self.torque_on else 0.0
        self.load = min(max(load, -1.0), 1.0)
        self.temperature += dt * (FULL_LOAD_RISE * self.load**2 - (self.temperature - AMBIENT)) / THERMAL_TAU
        self.voltage = self.physics.supply - SAG * chain_load
        self.set(Reg.PRESENT_POSITION, encoding.radians_to_ticks(position, m.resolution, s.direction, s.offset))
        self.set(Reg.PRESENT_VELOCITY, round(s.direction * velocity / m.velocity_unit))
        effort = self.load if m.effort is Reg.PRESENT_LOAD else self.load * self.physics.stall_current
        self.set(m.effort, round(s.direction * effort / m.effort_unit))
        self.set(Reg.PRESENT_VOLTAGE, round(self.voltage / m.voltage_unit))
        self.set(Reg.PRESENT_TEMPERATURE, round(self.temperature / m.temperature_unit))
        self.set(Reg.MOVING, int(abs(velocity) > 0.01))
        self._protect(now)

    def _protect(self, now: float) -> None:
        """Error bits from the thresholds; torque cut on the shutdown mask; bus watchdog."""
        bits = self.get(Reg.HARDWARE_ERROR_STATUS)
        if self.get(Reg.PRESENT_TEMPERATURE) > self.get(Reg.TEMPERATURE_LIMIT):
            bits |= self._mask(("overheating",))
        if not self.get(Reg.MIN_VOLTAGE_LIMIT) <= self.get(Reg.PRESENT_VOLTAGE) <= self.get(Reg.MAX_VOLTAGE_LIMIT):
            bits |= self._mask(("input voltage",))
        self.set(Reg.HARDWARE_ERROR_STATUS, bits)
        if bits & self.get(self.codec.shutdown_reg):
            self.set(Reg.TORQUE_ENABLE, 0)
        if self.has(Reg.BUS_WATCHDOG) and self.get(Reg.BUS_WATCHDOG) > 0:
            if now - self.last_heard > self.get(Reg.BUS_WATCHDOG) * self.codec.watchdog_unit:
                self.set(Reg.BUS_WATCHDOG, -1)
                self.set(Reg.GOAL_POSITION, self.get(Reg.PRESENT_POSITION))

    def status_error(self, error_number: int = 0) -> int:
        """The error byte of this servo's next reply."""
        hardware = self.get(Reg.HARDWARE_ERROR_STATUS)
        if self.codec.error_bits_in_status:
            return hardware
        return error_number | (self.codec.alert_mask if hardware else 0)
