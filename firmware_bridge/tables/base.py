"""Types shared by the control tables: register names, register layout, servo model metadata.

A control table is data: `Reg` (a closed enum, so a typo fails at import, not on the bus)
-> `Register` (address, size, access, memory area, signed encoding). Names follow the
concept, not a vendor's spelling: Feetech's "Response_Status_Level" and Dynamixel's
"Status_Return_Level" are both `Reg.STATUS_RETURN_LEVEL`, Feetech's "Status" (address
65) and Dynamixel's "Hardware_Error_Status" both `Reg.HARDWARE_ERROR_STATUS`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from firmware_bridge import encoding
from firmware_bridge.errors import UnknownRegister


class Reg(enum.Enum):
    """Register concepts; each model's table maps the ones it has to a `Register`."""

    MODEL_NUMBER = enum.auto()
    FIRMWARE_VERSION = enum.auto()
    ID = enum.auto()
    BAUD_RATE = enum.auto()
    RETURN_DELAY_TIME = enum.auto()
    STATUS_RETURN_LEVEL = enum.auto()
    DRIVE_MODE = enum.auto()
    OPERATING_MODE = enum.auto()
    HOMING_OFFSET = enum.auto()
    MIN_POSITION_LIMIT = enum.auto()
    MAX_POSITION_LIMIT = enum.auto()
    TEMPERATURE_LIMIT = enum.auto()
    MAX_VOLTAGE_LIMIT = enum.auto()
    MIN_VOLTAGE_LIMIT = enum.auto()
    MAX_TORQUE_LIMIT = enum.auto()
    PWM_LIMIT = enum.auto()
    CURRENT_LIMIT = enum.auto()
    VELOCITY_LIMIT = enum.auto()
    SHUTDOWN = enum.auto()
    UNLOADING_CONDITION = enum.auto()
    LED_ALARM_CONDITION = enum.auto()
    POSITION_P_GAIN = enum.auto()
    POSITION_I_GAIN = enum.auto()
    POSITION_D_GAIN = enum.auto()
    TORQUE_ENABLE = enum.auto()
    LED = enum.auto()
    HARDWARE_ERROR_STATUS = enum.auto()
    BUS_WATCHDOG = enum.auto()
    ACCELERATION = enum.auto()
    PROFILE_ACCELERATION = enum.auto()
    PROFILE_VELOCITY = enum.auto()
    GOAL_PWM = enum.auto()
    GOAL_CURRENT = enum.auto()
    GOAL_VELOCITY = enum.auto()
    GOAL_POSITION = enum.auto()
    GOAL_TIME = enum.auto()
    TORQUE_LIMIT = enum.auto()
    LOCK = enum.auto()
    MOVING = enum.auto()
    PRESENT_PWM = enum.auto()
    PRESENT_LOAD = enum.auto()
    PRESENT_CURRENT = enum.auto()
    PRESENT_VELOCITY = enum.auto()
    PRESENT_POSITION = enum.auto()
    PRESENT_VOLTAGE = enum.auto()
    PRESENT_TEMPERATURE = enum.auto()


class Access(enum.Enum):
    R = "R"
    RW = "RW"


class Area(enum.Enum):
    """EEPROM survives power-off and is usually writable only with torque off (or unlocked)."""

    EEPROM = "EEPROM"
    RAM = "RAM"


class Signedness(enum.Enum):
    UNSIGNED = "unsigned"
    SIGN_MAGNITUDE = "sign-magnitude"
    TWOS_COMPLEMENT = "two's complement"


@dataclass(frozen=True)
class Encoding:
    """How a register holds a signed value; `sign_bit` only for sign-magnitude."""

    kind: Signedness = Signedness.UNSIGNED
    sign_bit: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is Signedness.SIGN_MAGNITUDE) != (self.sign_bit is not None):
            raise ValueError(f"{self.kind.value} encoding with sign_bit={self.sign_bit}: "
                             "give a sign bit for sign-magnitude and only then")


UNSIGNED = Encoding()
TWOS_COMPLEMENT = Encoding(Signedness.TWOS_COMPLEMENT)


def sign_magnitude(bit: int) -> Encoding:
    return Encoding(Signedness.SIGN_MAGNITUDE, bit)


@dataclass(frozen=True)
class Register:
    """One control-table entry: `size` [bytes] at `address`, little-endian on the wire."""

    address: int
    size: int
    access: Access
    area: Area
    encoding: Encoding = UNSIGNED

    def __post_init__(self) -> None:
        if self.size not in encoding.REGISTER_SIZES or not 0 <= self.address < 1 << 16:
            raise ValueError(f"register at {self.address} of {self.size} bytes: size must be 1, 2 or 4, "
                             "address in [0, 65535]")
        if self.encoding.sign_bit is not None and self.encoding.sign_bit >= 8 * self.size:
            raise ValueError(f"sign bit {self.encoding.sign_bit} beyond a {self.size}-byte register")

    def decode(self, data: bytes) -> int:
        """Signed value of the register's raw little-endian bytes."""
        raw = encoding.bytes_to_int(data)
        if self.encoding.kind is Signedness.SIGN_MAGNITUDE:
            return encoding.decode_sign_magnitude(raw, self.encoding.sign_bit or 0)
        if self.encoding.kind is Signedness.TWOS_COMPLEMENT:
            return encoding.decode_twos_complement(raw, self.size)
        return raw

    def encode(self, value: int) -> bytes:
        """Raw little-endian bytes of `value`; raises `EncodingError` when it does not fit."""
        if self.encoding.kind is Signedness.SIGN_MAGNITUDE:
            value = encoding.encode_sign_magnitude(value, self.encoding.sign_bit or 0)
        elif self.encoding.kind is Signedness.TWOS_COMPLEMENT:
            value = encoding.encode_twos_complement(value, self.size)
        return encoding.int_to_bytes(value, self.size)


RPM = 2.0 * math.pi / 60.0  # [rad/s] per rpm


@dataclass(frozen=True)
class ServoModel:
    """A servo model: its control table and the units of its raw register values.

    Attributes:
        name: lower-case model name as written in robot.toml (e.g. "xl430-w250").
        protocol: wire protocol, one of `robots.spec.PROTOCOLS`.
        model_number: the number the servo reports (ping reply / Model_Number register).
        resolution: position ticks per revolution [ticks/rev].
        velocity_unit: one raw velocity unit in [rad/s].
        effort: the register that reports effort (PRESENT_CURRENT or PRESENT_LOAD).
        effort_unit: one raw effort unit, in [A] for current, or in [fraction of max torque] for load.
        voltage_unit: one raw voltage unit [V]. temperature_unit: one raw unit [degC].
        error_bits: bit index -> name, for HARDWARE_ERROR_STATUS (and SHUTDOWN / UNLOADING masks).
        baud_rates: bus rate [bit/s] -> value of the BAUD_RATE register.
        operating_modes: mode name -> value of the OPERATING_MODE register.
        registers: the control table.
        datasheet: URL of the control table this was copied from.
    """

    name: str
    protocol: str
    model_number: int
    resolution: int
    velocity_unit: float
    effort: Reg
    effort_unit: float
    voltage_unit: float
    temperature_unit: float
    error_bits: Mapping[int, str]
    baud_rates: Mapping[int, int]
    operating_modes: Mapping[str, int]
    registers: Mapping[Reg, Register] = field(repr=False)
    datasheet: str

    def __post_init__(self) -> None:
        if self.effort not in self.registers:
            raise ValueError(f"{self.name}: effort register {self.effort} missing from its table")

    def register(self, reg: Reg) -> Register:
        """The `Register` of `reg`, or `UnknownRegister` naming the ones this model has."""
        try:
            return self.registers[reg]
        except KeyError:
            raise UnknownRegister(self.name, reg.name, [r.name for r in self.registers]) from None

    def error_flags(self, value: int) -> tuple[str, ...]:
        """Names of the bits set in a HARDWARE_ERROR_STATUS value (unknown bits as 'bit N')."""
        return tuple(self.error_bits.get(bit, f"bit {bit}") for bit in range(8) if value >> bit & 1)
