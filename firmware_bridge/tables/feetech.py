"""Feetech STS-series control table (STS3215, the SO-100 / SO-101 servo).

Sources:
- Feetech SMS/STS memory table:
  http://doc.feetech.cn/#/prodinfodownload?srcType=FT-SMS-STS-emanual-229f4476422d4059abfb1cb0
- LeRobot's transcription of it, with the model number 777 of the STS3215 and the
  sign-magnitude bits: https://github.com/huggingface/lerobot/blob/main/src/lerobot/motors/feetech/tables.py
- Error bits of the status byte: Feetech `scservo_sdk` (protocol_packet_handler.py, ERRBIT_*).

Addresses 0-39 are EEPROM (written only after LOCK is cleared), 40 and up RAM. Units: one
velocity unit is one position step per second; load is 0.1 % of the maximum torque
(sign in bit 10); voltage 0.1 V; temperature 1 degC; current 6.5 mA.
"""

from __future__ import annotations

import math

from firmware_bridge.tables.base import (
    Access, Area, Reg, Register, ServoModel, sign_magnitude,
)

R, RW = Access.R, Access.RW
EEPROM, RAM = Area.EEPROM, Area.RAM

STS_REGISTERS: dict[Reg, Register] = {
    Reg.FIRMWARE_VERSION: Register(0, 1, R, EEPROM),
    Reg.MODEL_NUMBER: Register(3, 2, R, EEPROM),
    Reg.ID: Register(5, 1, RW, EEPROM),
    Reg.BAUD_RATE: Register(6, 1, RW, EEPROM),
    Reg.RETURN_DELAY_TIME: Register(7, 1, RW, EEPROM),  # [2 us]
    Reg.STATUS_RETURN_LEVEL: Register(8, 1, RW, EEPROM),
    Reg.MIN_POSITION_LIMIT: Register(9, 2, RW, EEPROM),  # [ticks]
    Reg.MAX_POSITION_LIMIT: Register(11, 2, RW, EEPROM),  # [ticks]
    Reg.TEMPERATURE_LIMIT: Register(13, 1, RW, EEPROM),  # [degC]
    Reg.MAX_VOLTAGE_LIMIT: Register(14, 1, RW, EEPROM),  # [0.1 V]
    Reg.MIN_VOLTAGE_LIMIT: Register(15, 1, RW, EEPROM),  # [0.1 V]
    Reg.MAX_TORQUE_LIMIT: Register(16, 2, RW, EEPROM),  # [0.1 %]
    Reg.UNLOADING_CONDITION: Register(19, 1, RW, EEPROM),  # error bits that cut torque
    Reg.LED_ALARM_CONDITION: Register(20, 1, RW, EEPROM),  # error bits that blink the LED
    Reg.POSITION_P_GAIN: Register(21, 1, RW, EEPROM),
    Reg.POSITION_D_GAIN: Register(22, 1, RW, EEPROM),
    Reg.POSITION_I_GAIN: Register(23, 1, RW, EEPROM),
    Reg.HOMING_OFFSET: Register(31, 2, RW, EEPROM, sign_magnitude(11)),  # [ticks]
    Reg.OPERATING_MODE: Register(33, 1, RW, EEPROM),
    Reg.TORQUE_ENABLE: Register(40, 1, RW, RAM),
    Reg.ACCELERATION: Register(41, 1, RW, RAM),  # [100 steps/s^2]
    Reg.GOAL_POSITION: Register(42, 2, RW, RAM, sign_magnitude(15)),  # [ticks]
    Reg.GOAL_TIME: Register(44, 2, RW, RAM),  # [ms]
    Reg.GOAL_VELOCITY: Register(46, 2, RW, RAM, sign_magnitude(15)),  # [steps/s]
    Reg.TORQUE_LIMIT: Register(48, 2, RW, RAM),  # [0.1 %]
    Reg.LOCK: Register(55, 1, RW, RAM),  # 1 = EEPROM write-protected
    Reg.PRESENT_POSITION: Register(56, 2, R, RAM, sign_magnitude(15)),  # [ticks]
    Reg.PRESENT_VELOCITY: Register(58, 2, R, RAM, sign_magnitude(15)),  # [steps/s]
    Reg.PRESENT_LOAD: Register(60, 2, R, RAM, sign_magnitude(10)),  # [0.1 %]
    Reg.PRESENT_VOLTAGE: Register(62, 1, R, RAM),  # [0.1 V]
    Reg.PRESENT_TEMPERATURE: Register(63, 1, R, RAM),  # [degC]
    Reg.HARDWARE_ERROR_STATUS: Register(65, 1, R, RAM),  # "Status": the error bits below
    Reg.MOVING: Register(66, 1, R, RAM),
    Reg.PRESENT_CURRENT: Register(69, 2, R, RAM),  # [6.5 mA]
}

# Bits of the status error byte, of the Status register and of the UNLOADING / LED_ALARM masks.
STS_ERROR_BITS = {0: "input voltage", 1: "angle sensor", 2: "overheating", 3: "overcurrent", 5: "overload"}

STS_BAUD_RATES = {1_000_000: 0, 500_000: 1, 250_000: 2, 128_000: 3, 115_200: 4, 57_600: 5,
                  38_400: 6, 19_200: 7}

STS_OPERATING_MODES = {"position": 0, "velocity": 1, "pwm": 2, "step": 3}

STS_DATASHEET = "http://doc.feetech.cn/#/prodinfodownload?srcType=FT-SMS-STS-emanual-229f4476422d4059abfb1cb0"

MODELS = (
    ServoModel(
        name="sts3215",
        protocol="feetech_sts",
        model_number=777,
        resolution=4096,
        velocity_unit=2.0 * math.pi / 4096,
        effort=Reg.PRESENT_LOAD,
        effort_unit=0.001,
        voltage_unit=0.1,
        temperature_unit=1.0,
        error_bits=STS_ERROR_BITS,
        baud_rates=STS_BAUD_RATES,
        operating_modes=STS_OPERATING_MODES,
        registers=STS_REGISTERS,
        datasheet=STS_DATASHEET,
    ),
)
