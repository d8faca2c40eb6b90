"""Control tables: every robot's servo model has a table, with the documented model numbers."""

import pytest

import robots
from firmware_bridge.errors import EncodingError, UnknownRegister, UnknownServoModel
from firmware_bridge.tables import MODELS, Area, Access, Reg, Signedness, model_for_number, table_for

# Model numbers from the ROBOTIS e-Manual control tables and LeRobot's Feetech table.
MODEL_NUMBERS = {"sts3215": 777, "xl330-m288": 1200, "xl430-w250": 1060, "xm430-w350": 1020, "xm540-w270": 1120}

# Registers a bus driver reads or writes every cycle, on every model.
ESSENTIAL = (Reg.ID, Reg.BAUD_RATE, Reg.TORQUE_ENABLE, Reg.GOAL_POSITION, Reg.PRESENT_POSITION,
             Reg.PRESENT_VELOCITY, Reg.PRESENT_VOLTAGE, Reg.PRESENT_TEMPERATURE, Reg.MOVING,
             Reg.HARDWARE_ERROR_STATUS, Reg.MIN_POSITION_LIMIT, Reg.MAX_POSITION_LIMIT,
             Reg.HOMING_OFFSET, Reg.OPERATING_MODE, Reg.RETURN_DELAY_TIME, Reg.MODEL_NUMBER)


@pytest.mark.parametrize("name, number", MODEL_NUMBERS.items())
def test_model_numbers(name, number):
    model = table_for(name)
    assert model.model_number == number
    assert model.resolution == 4096
    assert model_for_number(model.protocol, number) is model


def test_every_robot_servo_model_has_a_table():
    for name in robots.available():
        spec = robots.load(name)
        for servo in spec.bus.servos if spec.bus else ():
            assert table_for(servo.model).protocol == spec.bus.protocol, (name, servo)


@pytest.mark.parametrize("model", MODELS.values(), ids=lambda m: m.name)
def test_tables_are_consistent(model):
    for reg in ESSENTIAL + (model.effort,):
        model.register(reg)
    spans = sorted((r.address, r.address + r.size, reg) for reg, r in model.registers.items())
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        assert end <= start, f"{model.name}: {a} overlaps {b}"
    for reg, r in model.registers.items():
        if reg.name.startswith("PRESENT_") or reg in (Reg.MODEL_NUMBER, Reg.MOVING):
            assert r.access is Access.R, reg
    assert model.register(Reg.TORQUE_ENABLE).area is Area.RAM
    assert model.register(Reg.ID).area is Area.EEPROM
    assert model.datasheet.startswith("http")


def test_dynamixel_x_specifics():
    xl430, xm430 = table_for("xl430-w250"), table_for("XM430-W350")
    assert xl430.effort is Reg.PRESENT_LOAD and xm430.effort is Reg.PRESENT_CURRENT
    assert xl430.register(Reg.PRESENT_LOAD).address == xm430.register(Reg.PRESENT_CURRENT).address == 126
    assert xm430.register(Reg.PRESENT_POSITION).address == 132
    assert xm430.register(Reg.BUS_WATCHDOG).address == 98
    assert xm430.register(Reg.SHUTDOWN).address == 63
    assert xm430.register(Reg.GOAL_POSITION).encoding.kind is Signedness.TWOS_COMPLEMENT
    assert xm430.register(Reg.PRESENT_VELOCITY).decode(b"\xff\xff\xff\xff") == -1
    with pytest.raises(UnknownRegister, match="GOAL_CURRENT"):
        xl430.register(Reg.GOAL_CURRENT)


def test_feetech_sign_magnitude_registers():
    sts = table_for("sts3215")
    assert sts.register(Reg.PRESENT_POSITION).address == 56
    assert sts.register(Reg.PRESENT_LOAD).encoding.sign_bit == 10
    assert sts.register(Reg.PRESENT_VELOCITY).decode(b"\x05\x80") == -5
    assert sts.register(Reg.GOAL_VELOCITY).encode(-5) == b"\x05\x80"
    assert sts.register(Reg.HOMING_OFFSET).encode(-2047) == b"\xff\x0f"
    with pytest.raises(EncodingError):
        sts.register(Reg.HOMING_OFFSET).encode(2048)
    assert sts.error_flags(0b100101) == ("input voltage", "overheating", "overload")


def test_unknown_model_suggests():
    with pytest.raises(UnknownServoModel) as info:
        table_for("xl430w250")
    assert "did you mean 'xl430-w250'" in str(info.value).lower()
    assert isinstance(info.value, KeyError)
