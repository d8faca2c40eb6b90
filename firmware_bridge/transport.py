"""Serial I/O behind one small interface, so a bus driver runs over a USB adapter, a
pseudo-terminal (the emulated chain) or anything else that moves bytes.

USB adapters and latency: FTDI chips (FT232, the U2D2 of ROBOTIS) hold received bytes
for up to their `latency_timer` before sending them to the host, 16 ms by default. Every
reply then takes >= 16 ms, which caps a request/reply bus far below 100 Hz. Set it to
1 ms: `echo 1 | sudo tee /sys/bus/usb-serial/devices/ttyUSB0/latency_timer` (or a udev
rule), or open the port with `low_latency=True`, which asks the Linux serial driver for
ASYNC_LOW_LATENCY (ftdi_sio maps it to a 1 ms latency timer). CH340/CH343 adapters (the
Feetech URT-1, Waveshare boards) have no such timer.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Protocol

import serial
from serial.tools import list_ports as _serial_list_ports

from firmware_bridge.errors import PortError


class Transport(Protocol):
    """A byte pipe to a servo bus (half duplex: what is written is not read back)."""

    @property
    def port(self) -> str:
        """Path or name of the port, for messages."""
        ...

    def write(self, data: bytes) -> None:
        """Send `data` (returns once the bytes are handed to the OS)."""
        ...

    def read(self, n: int, deadline: float) -> bytes:
        """Up to `n` bytes: returns once `n` bytes arrived or at `deadline` (a
        `time.monotonic()` value [s]) with what arrived by then, possibly nothing."""
        ...

    def flush_input(self) -> None:
        """Drop bytes received and not yet read (stale or late replies)."""
        ...

    def close(self) -> None:
        ...


class SerialTransport:
    """A `Transport` over pyserial: a USB serial adapter, or a pseudo-terminal path.

    Args:
        port: device path, e.g. "/dev/ttyUSB0", "/dev/tty.usbmodem...", or a pty slave path.
        baudrate: bus rate [bit/s].
        low_latency: ask the driver for ASYNC_LOW_LATENCY (1 ms FTDI latency timer) where
            the port supports it; silently skipped where it does not (ptys, macOS, Windows).

    Raises:
        PortError: the port cannot be opened.
    """

    def __init__(self, port: str, baudrate: int, low_latency: bool = True):
        try:
            self._serial = serial.Serial(port, baudrate, timeout=0, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise PortError(port, f"cannot open at {baudrate} bit/s ({e})") from e
        try:
            self._fd: int | None = self._serial.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException):
            self._fd = None
        self.low_latency = False
        if low_latency and hasattr(self._serial, "set_low_latency_mode"):
            try:
                self._serial.set_low_latency_mode(True)
                self.low_latency = True
            except (ValueError, OSError):
                pass  # not a real serial device (pty) or no driver support

    @property
    def port(self) -> str:
        return str(self._serial.port)

    def write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as e:
            raise PortError(self.port, f"write failed ({e})") from e

    def read(self, n: int, deadline: float) -> bytes:
        out = bytearray()
        try:
            while len(out) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self._fd is None:  # no file descriptor (Windows): let pyserial wait
                    self._serial.timeout = remaining
                    out += self._serial.read(n - len(out))
                    self._serial.timeout = 0
                elif select.select([self._fd], [], [], remaining)[0]:
                    chunk = self._serial.read(n - len(out))  # timeout 0: what has arrived
                    if not chunk:
                        raise OSError("the port reports data but none can be read (device gone?)")
                    out += chunk
        except (serial.SerialException, OSError) as e:
            raise PortError(self.port, f"read failed ({e})") from e
        return bytes(out)

    def flush_input(self) -> None:
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as e:
            raise PortError(self.port, f"flush failed ({e})") from e

    def close(self) -> None:
        self._serial.close()


@dataclass(frozen=True)
class PortInfo:
    """A serial port that may lead to a servo bus.

    Attributes:
        device: the path to open.
        description: what the OS reports (e.g. "FT232R USB UART").
        vid, pid: USB vendor and product id, None for non-USB ports.
        serial_number: the adapter's USB serial number (tells two arms apart).
    """

    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None

    @property
    def usb_id(self) -> str:
        """"VID:PID" in hex, or "" for a non-USB port."""
        return f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else ""


def list_ports(usb_only: bool = True) -> list[PortInfo]:
    """Serial ports that may hold a servo bus, sorted by device path.

    Args:
        usb_only: keep only USB adapters (FTDI 0403:6014 is the ROBOTIS U2D2, 1A86:55D3 /
            1A86:7523 the CH343 / CH340 of Feetech boards); the built-in UARTs are skipped.
    """
    ports = [PortInfo(p.device, p.description or "", p.vid, p.pid, p.serial_number)
             for p in _serial_list_ports.comports()]
    return sorted((p for p in ports if p.vid is not None or not usb_only), key=lambda p: p.device)
