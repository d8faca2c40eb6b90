"""One table from a bus protocol name (`robots.spec.PROTOCOLS`) to what a driver or an
emulator needs of that protocol: packet builders and parsers, reply sizes, the registers
read every cycle and the servo failsafes.

    codec = codec_for(bus_spec.protocol)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from firmware_bridge.errors import UnknownProtocol
from firmware_bridge.protocol import dynamixel as dxl
from firmware_bridge.protocol import feetech as ft
from firmware_bridge.protocol.packet import Packet, Status
from firmware_bridge.tables import Reg


@dataclass(frozen=True)
class Codec:
    """A wire protocol as data and pure functions.

    Attributes:
        protocol: name as in robot.toml.
        ping, read, write, sync_read, sync_write: instruction packet builders (bytes).
        status: builds a servo's reply `(id, error, params) -> bytes`.
        find_packet: stream parser `buffer -> (Packet | None, consumed)`.
        decode_status: `(packet, expected_id) -> Status`.
        status_overhead: bytes of a reply around its data [bytes] (without byte stuffing).
        addr_size: bytes of an address / length parameter in read-type instructions.
        broadcast_id: the id that sync instructions are sent to.
        ping_data: data bytes of a ping reply (Dynamixel: model number + firmware).
        model_number_address: where MODEL_NUMBER lives, on every model of the protocol.
        alert_mask: bits of the reply error byte that mean "read HARDWARE_ERROR_STATUS";
            0 where the error byte itself holds the error bits (Feetech).
        error_bits_in_status: whether the reply error byte uses the table's error bits.
        state_regs: registers `read_state` reads each cycle, in one or a few sync reads.
        shutdown_reg: mask of error bits that cut torque (Dynamixel Shutdown, Feetech
            Unloading Condition). shutdown_flags: names (table error bits) set in it.
        watchdog_reg, watchdog_unit: the bus watchdog register and its unit [s], if any.
        eeprom_lock: register that write-protects EEPROM (written 0 before, 1 after), if any.
        write_reply_level: lowest STATUS_RETURN_LEVEL at which a servo answers a write.
        default_return_delay: factory RETURN_DELAY_TIME [2 us units].
    """

    protocol: str
    ping: Callable[[int], bytes]
    read: Callable[[int, int, int], bytes]
    write: Callable[[int, int, bytes], bytes]
    sync_read: Callable[[int, int, Iterable[int]], bytes]
    sync_write: Callable[[int, int, Mapping[int, bytes]], bytes]
    status: Callable[[int, int, bytes], bytes]
    find_packet: Callable[[bytes], tuple[Packet | None, int]]
    decode_status: Callable[[Packet, int | None], Status]
    status_overhead: int
    addr_size: int
    broadcast_id: int
    ping_data: int
    model_number_address: int
    alert_mask: int
    error_bits_in_status: bool
    state_regs: tuple[Reg, ...]
    shutdown_reg: Reg
    shutdown_flags: tuple[str, ...]
    watchdog_reg: Reg | None
    watchdog_unit: float
    eeprom_lock: Reg | None
    write_reply_level: int
    default_return_delay: int

    def reply_size(self, data_len: int) -> int:
        """Bytes on the wire of a reply carrying `data_len` data bytes [bytes]."""
        return self.status_overhead + data_len


_STATE = (Reg.PRESENT_POSITION, Reg.PRESENT_VELOCITY, Reg.PRESENT_LOAD, Reg.PRESENT_CURRENT,
          Reg.PRESENT_VOLTAGE, Reg.PRESENT_TEMPERATURE)

CODECS: dict[str, Codec] = {
    "feetech_sts": Codec(
        protocol="feetech_sts", ping=ft.ping, read=ft.read, write=ft.write, sync_read=ft.sync_read,
        sync_write=ft.sync_write, status=ft.status, find_packet=ft.find_packet,
        decode_status=ft.decode_status, status_overhead=6, addr_size=1, broadcast_id=ft.BROADCAST_ID,
        ping_data=0, model_number_address=3, alert_mask=0, error_bits_in_status=True,
        # 56..65: position, velocity, load, voltage, temperature and the Status error bits
        # are adjacent; PRESENT_CURRENT (69) is not read every cycle.
        state_regs=(Reg.PRESENT_POSITION, Reg.PRESENT_VELOCITY, Reg.PRESENT_LOAD, Reg.PRESENT_VOLTAGE,
                    Reg.PRESENT_TEMPERATURE, Reg.HARDWARE_ERROR_STATUS),
        shutdown_reg=Reg.UNLOADING_CONDITION,
        shutdown_flags=("overheating", "overcurrent", "overload"),
        watchdog_reg=None, watchdog_unit=0.0, eeprom_lock=Reg.LOCK, write_reply_level=1,
        default_return_delay=0,
    ),
    "dynamixel_2": Codec(
        protocol="dynamixel_2", ping=dxl.ping, read=dxl.read, write=dxl.write, sync_read=dxl.sync_read,
        sync_write=dxl.sync_write, status=dxl.status, find_packet=dxl.find_packet,
        decode_status=dxl.decode_status, status_overhead=11, addr_size=2, broadcast_id=dxl.BROADCAST_ID,
        ping_data=3, model_number_address=0, alert_mask=dxl.ALERT_BIT, error_bits_in_status=False,
        # 126..146: current (or load), velocity, position, voltage, temperature in one block;
        # Hardware Error Status (70) is read only when a reply carries the alert bit.
        state_regs=_STATE,
        shutdown_reg=Reg.SHUTDOWN,
        shutdown_flags=("overheating", "electrical shock", "overload"),
        watchdog_reg=Reg.BUS_WATCHDOG, watchdog_unit=0.020, eeprom_lock=None, write_reply_level=2,
        default_return_delay=250,
    ),
}


def codec_for(protocol: str) -> Codec:
    """The `Codec` of a protocol name; `UnknownProtocol` with the known names otherwise."""
    try:
        return CODECS[protocol]
    except KeyError:
        raise UnknownProtocol(protocol, sorted(CODECS)) from None
