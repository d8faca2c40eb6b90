"""Errors raised by the `firmware_bridge` package.

    BridgeError
    ├── PacketError          bytes that do not form a valid packet (malformed, truncated)
    │   └── ChecksumError    a complete frame whose checksum / CRC does not match
    ├── EncodingError        a value that does not fit its register size or encoding
    ├── ServoError           a status packet whose error byte is set
    ├── WrongServo           a reply from another servo id than the one asked
    ├── ServoTimeout         servos that stayed silent through every retry
    ├── NotConnected         a bus used before connect() or after disconnect()
    ├── PortError            a serial port that cannot be opened, or vanished
    ├── UnknownProtocol      a bus protocol that no codec provides
    ├── UnknownServoModel    a model name that no control table provides
    ├── UnknownRegister      a register that the servo model's control table lacks
    ├── ArmMismatch          a robot whose joints or gripper no servo of its bus drives
    ├── FaultProfileError    a fault profile (TOML) with a missing or invalid field
    └── UnknownFaultProfile  a fault profile name that no shipped profile has

Every message says what was expected, what was found and, where one exists, what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class BridgeError(Exception):
    """Root of every error raised by `firmware_bridge`."""


class PacketError(BridgeError, ValueError):
    """Bytes that do not form a valid packet of the protocol.

    Attributes:
        raw: the offending bytes.
        expected: what a valid packet would have had there.
    """

    def __init__(self, problem: str, raw: bytes, expected: str):
        self.raw = bytes(raw)
        self.expected = expected
        super().__init__(f"{problem}: got [{self.raw.hex(' ').upper()}], expected {expected}")


class ChecksumError(PacketError):
    """A complete frame whose checksum does not match its contents.

    Attributes:
        consumed: how many bytes of the buffer handed to the parser a caller should drop
            before parsing again (the parser resynchronizes one byte past the false start).
    """

    def __init__(self, raw: bytes, expected: str, consumed: int):
        self.consumed = consumed
        super().__init__("checksum mismatch", raw, expected)


class EncodingError(BridgeError, ValueError):
    """A value that does not fit the register size or signed encoding it is written with."""

    def __init__(self, value: int | float, problem: str, fix: str):
        self.value = value
        super().__init__(f"cannot encode {value!r}: {problem}. Fix: {fix}")


class ServoError(BridgeError):
    """A servo answered with its status error byte set.

    Attributes:
        servo_id: the servo that answered.
        error: the raw status error byte.
        flags: decoded names of the error bits / error number.
    """

    def __init__(self, servo_id: int, error: int, flags: Sequence[str]):
        self.servo_id, self.error, self.flags = servo_id, error, tuple(flags)
        super().__init__(
            f"servo {servo_id} reports error 0x{error:02X}: {', '.join(self.flags) or 'unknown bits'}"
        )


class WrongServo(BridgeError):
    """A reply arrived from another servo than the one addressed (id clash or a stale reply)."""

    def __init__(self, expected_id: int, found_id: int):
        self.expected_id, self.found_id = expected_id, found_id
        super().__init__(
            f"expected a reply from servo {expected_id}, got one from servo {found_id}. "
            "Fix: check for duplicate ids on the bus, or flush the port before the next request"
        )


class ServoTimeout(BridgeError, TimeoutError):
    """Servos that did not answer within the reply timeout, through every retry.

    Attributes:
        servo_ids: the silent servos.
        timeout: the reply timeout of each attempt [s].
        attempts: how many requests were sent.
    """

    def __init__(self, servo_ids: Sequence[int], what: str, timeout: float, attempts: int):
        self.servo_ids, self.timeout, self.attempts = tuple(servo_ids), timeout, attempts
        super().__init__(
            f"servo(s) {', '.join(map(str, self.servo_ids))} did not answer {what} within "
            f"{timeout * 1e3:.1f} ms, {attempts} attempt(s). Fix: check power, cabling, the id and the "
            "baud rate (ping the id), and the adapter's latency timer"
        )


# What `Link.request` raises when a request got no intact reply through every retry: silence,
# only garbage (corrupted bytes, or a reply held back past its timeout that arrived during a
# later request), or only another servo's reply.
UNANSWERED = (ServoTimeout, PacketError, WrongServo)


class NotConnected(BridgeError, ConnectionError):
    """A bus used before `connect()` or after `disconnect()`."""

    def __init__(self, port: str, action: str):
        self.port = port
        super().__init__(f"cannot {action}: the bus on {port!r} is not connected. Fix: call connect() "
                         "first or use the bus as a context manager")


class PortError(BridgeError, ConnectionError):
    """A serial port that cannot be opened, or that vanished while in use."""

    def __init__(self, port: str, problem: str):
        self.port = port
        super().__init__(f"serial port {port!r}: {problem}. Fix: check the cable and the path "
                         "(firmware_bridge.transport.list_ports() lists candidates)")


def _did_you_mean(name: str, available: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(available), n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class UnknownServoModel(BridgeError, KeyError):
    """A servo model name that no control table provides."""

    def __init__(self, name: str, available: Sequence[str]):
        self.name, self.available = name, tuple(available)
        super().__init__(
            f"unknown servo model {name!r}.{_did_you_mean(name, available)} "
            f"Known models: {', '.join(available)}. "
            "Fix: spell the model as in its datasheet (e.g. 'xl430-w250') or add a table "
            "in firmware_bridge/tables/"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownRegister(BridgeError, KeyError):
    """A register that the control table of a servo model does not have."""

    def __init__(self, model: str, register: str, available: Sequence[str]):
        self.model, self.register, self.available = model, register, tuple(available)
        super().__init__(
            f"servo model {model!r} has no register {register}. "
            f"Its registers: {', '.join(available)}"
        )

    def __str__(self) -> str:
        return self.args[0]


class UnknownProtocol(BridgeError, KeyError):
    """A bus protocol name that no codec provides."""

    def __init__(self, name: str, available: Sequence[str]):
        self.name, self.available = name, tuple(available)
        super().__init__(f"unknown bus protocol {name!r}.{_did_you_mean(name, available)} "
                         f"Known protocols: {', '.join(available)}")

    def __str__(self) -> str:
        return self.args[0]


class ArmMismatch(BridgeError):
    """A robot paired with a bus on which some of its joints (or its gripper) have no servo.

    Attributes:
        robot: the robot's name.
        missing: its joints without a servo, in robot.toml order (the gripper last).
        driven: the joints the bus's servos drive, in bus order.
    """

    def __init__(self, robot: str, missing: Sequence[str], driven: Sequence[str]):
        self.robot, self.missing, self.driven = robot, tuple(missing), tuple(driven)
        super().__init__(f"{robot}'s bus has no servo for {', '.join(self.missing)}; its servos drive "
                         f"{', '.join(self.driven)}. Fix: use the bus of {robot}'s robot.toml, or name each joint "
                         "and the gripper in a [[bus.servos]] `joint` there")


class FaultProfileError(BridgeError, ValueError):
    """A fault profile whose TOML is invalid, naming the file and the field."""

    def __init__(self, source: str, field: str, problem: str, fix: str):
        self.source, self.field = source, field
        super().__init__(f"fault profile {source}: {field}: {problem}. Fix: {fix}")


class UnknownFaultProfile(BridgeError, KeyError):
    """A fault profile name that is neither a shipped profile nor an existing file."""

    def __init__(self, name: str, available: Sequence[str]):
        self.name, self.available = name, tuple(available)
        super().__init__(f"unknown fault profile {name!r}.{_did_you_mean(name, available)} "
                         f"Shipped profiles: {', '.join(available)}. Fix: name one of them or give a path "
                         "to a .toml file")

    def __str__(self) -> str:
        return self.args[0]
