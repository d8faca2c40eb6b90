"""Dynamixel X-series control tables (Protocol 2.0): XL330-M288, XL430-W250, XM430-W350, XM540-W270.

Sources (ROBOTIS e-Manual, "Control Table" of each model):
- https://emanual.robotis.com/docs/en/dxl/x/xl330-m288/
- https://emanual.robotis.com/docs/en/dxl/x/xl430-w250/
- https://emanual.robotis.com/docs/en/dxl/x/xm430-w350/
- https://emanual.robotis.com/docs/en/dxl/x/xm540-w270/
Model numbers (1200, 1060, 1020, 1120) as in the e-Manual tables and LeRobot's
https://github.com/huggingface/lerobot/blob/main/src/lerobot/motors/dynamixel/tables.py

The four share one layout; the XL430-W250 has no current sensing, so address 126 is
Present Load [0.1 %] and there is no Current Limit / Goal Current. Addresses 0-63 are
EEPROM (writable only with torque off), 64 and up RAM. Signed registers are two's
complement. Units: velocity 0.229 rpm; voltage 0.1 V; temperature 1 degC; current 1 mA
(XL330) or 2.69 mA (XM430, XM540); Bus Watchdog 20 ms.
"""

from __future__ import annotations

from firmware_bridge.tables.base import (
    RPM, TWOS_COMPLEMENT, Access, Area, Reg, Register, ServoModel,
)

R, RW = Access.R, Access.RW
EEPROM, RAM = Area.EEPROM, Area.RAM
S = TWOS_COMPLEMENT

_COMMON: dict[Reg, Register] = {
    Reg.MODEL_NUMBER: Register(0, 2, R, EEPROM),
    Reg.FIRMWARE_VERSION: Register(6, 1, R, EEPROM),
    Reg.ID: Register(7, 1, RW, EEPROM),
    Reg.BAUD_RATE: Register(8, 1, RW, EEPROM),
    Reg.RETURN_DELAY_TIME: Register(9, 1, RW, EEPROM),  # [2 us]
    Reg.DRIVE_MODE: Register(10, 1, RW, EEPROM),
    Reg.OPERATING_MODE: Register(11, 1, RW, EEPROM),
    Reg.HOMING_OFFSET: Register(20, 4, RW, EEPROM, S),  # [ticks]
    Reg.TEMPERATURE_LIMIT: Register(31, 1, RW, EEPROM),  # [degC]
    Reg.MAX_VOLTAGE_LIMIT: Register(32, 2, RW, EEPROM),  # [0.1 V]
    Reg.MIN_VOLTAGE_LIMIT: Register(34, 2, RW, EEPROM),  # [0.1 V]
    Reg.PWM_LIMIT: Register(36, 2, RW, EEPROM),  # [0.113 %]
    Reg.VELOCITY_LIMIT: Register(44, 4, RW, EEPROM),  # [0.229 rpm]
    Reg.MAX_POSITION_LIMIT: Register(48, 4, RW, EEPROM),  # [ticks]
    Reg.MIN_POSITION_LIMIT: Register(52, 4, RW, EEPROM),  # [ticks]
    Reg.SHUTDOWN: Register(63, 1, RW, EEPROM),  # error bits that cut torque
    Reg.TORQUE_ENABLE: Register(64, 1, RW, RAM),
    Reg.LED: Register(65, 1, RW, RAM),
    Reg.STATUS_RETURN_LEVEL: Register(68, 1, RW, RAM),
    Reg.HARDWARE_ERROR_STATUS: Register(70, 1, R, RAM),
    Reg.POSITION_D_GAIN: Register(80, 2, RW, RAM),
    Reg.POSITION_I_GAIN: Register(82, 2, RW, RAM),
    Reg.POSITION_P_GAIN: Register(84, 2, RW, RAM),
    Reg.BUS_WATCHDOG: Register(98, 1, RW, RAM, S),  # [20 ms]; 0 off, reads -1 once tripped
    Reg.GOAL_PWM: Register(100, 2, RW, RAM, S),  # [0.113 %]
    Reg.GOAL_VELOCITY: Register(104, 4, RW, RAM, S),  # [0.229 rpm]
    Reg.PROFILE_ACCELERATION: Register(108, 4, RW, RAM),  # [214.577 rev/min^2]
    Reg.PROFILE_VELOCITY: Register(112, 4, RW, RAM),  # [0.229 rpm]
    Reg.GOAL_POSITION: Register(116, 4, RW, RAM, S),  # [ticks]
    Reg.MOVING: Register(122, 1, R, RAM),
    Reg.PRESENT_PWM: Register(124, 2, R, RAM, S),  # [0.113 %]
    Reg.PRESENT_VELOCITY: Register(128, 4, R, RAM, S),  # [0.229 rpm]
    Reg.PRESENT_POSITION: Register(132, 4, R, RAM, S),  # [ticks]
    Reg.PRESENT_VOLTAGE: Register(144, 2, R, RAM),  # [0.1 V]
    Reg.PRESENT_TEMPERATURE: Register(146, 1, R, RAM),  # [degC]
}

WITH_CURRENT: dict[Reg, Register] = {
    **_COMMON,
    Reg.CURRENT_LIMIT: Register(38, 2, RW, EEPROM),  # [current unit]
    Reg.GOAL_CURRENT: Register(102, 2, RW, RAM, S),  # [current unit]
    Reg.PRESENT_CURRENT: Register(126, 2, R, RAM, S),  # [current unit]
}

WITH_LOAD: dict[Reg, Register] = {
    **_COMMON,
    Reg.PRESENT_LOAD: Register(126, 2, R, RAM, S),  # [0.1 %]
}

# Bits of Hardware Error Status (70) and of the Shutdown mask (63).
X_ERROR_BITS = {0: "input voltage", 2: "overheating", 3: "motor encoder", 4: "electrical shock",
                5: "overload"}

X_BAUD_RATES = {9_600: 0, 57_600: 1, 115_200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5,
                4_000_000: 6}

X_OPERATING_MODES = {"current": 0, "velocity": 1, "position": 3, "extended_position": 4,
                     "current_based_position": 5, "pwm": 16}
XL430_OPERATING_MODES = {k: v for k, v in X_OPERATING_MODES.items() if k not in ("current", "current_based_position")}

VELOCITY_UNIT = 0.229 * RPM  # [rad/s]


def _model(name: str, number: int, registers: dict[Reg, Register], current_unit: float | None) -> ServoModel:
    return ServoModel(
        name=name,
        protocol="dynamixel_2",
        model_number=number,
        resolution=4096,
        velocity_unit=VELOCITY_UNIT,
        effort=Reg.PRESENT_LOAD if current_unit is None else Reg.PRESENT_CURRENT,
        effort_unit=0.001 if current_unit is None else current_unit,
        voltage_unit=0.1,
        temperature_unit=1.0,
        error_bits=X_ERROR_BITS,
        baud_rates=X_BAUD_RATES,
        operating_modes=XL430_OPERATING_MODES if current_unit is None else X_OPERATING_MODES,
        registers=registers,
        datasheet=f"https://emanual.robotis.com/docs/en/dxl/x/{name}/",
    )


MODELS = (
    _model("xl330-m288", 1200, WITH_CURRENT, 0.001),
    _model("xl430-w250", 1060, WITH_LOAD, None),
    _model("xm430-w350", 1020, WITH_CURRENT, 0.00269),
    _model("xm540-w270", 1120, WITH_CURRENT, 0.00269),
)
