"""An emulated servo chain on a pseudo-terminal: any program opens `chain.port` as it
would a USB adapter (pyserial, the vendor SDKs) and talks the real wire protocol.

    with EmulatedChain.from_bus_spec(robots.load("koch").bus) as chain:
        bus = ServoBus(spec.bus, chain.port)

A background thread reads instruction packets, steps the plant, and answers like the
servos would: after the request's bytes have crossed the wire, each servo's status return
delay, and the reply's own wire time (10 bits per byte at the bus baud rate). Replies to
sync and bulk reads follow each other in id order, as on a real bus.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from types import TracebackType

import numpy as np

from firmware_bridge.codec import Codec, codec_for
from firmware_bridge.emulator.faults import FaultHook, NoFaults
from firmware_bridge.emulator.plant import FirstOrderPlant, Plant
from firmware_bridge.emulator.servo import EmulatedServo
from firmware_bridge.emulator.wire import respond
from firmware_bridge.errors import ChecksumError
from firmware_bridge.link import BITS_PER_BYTE
from firmware_bridge.tables import Reg, table_for
from robots.spec import BusSpec

POLL = 0.005  # longest wait for bytes before the plant is stepped anyway [s]
MIN_STEP = 0.001  # shortest plant step [s]; requests closer together see the same state
MAX_STEP = 0.05  # longest plant step [s]; a stalled thread does not make the arm jump
STALE = 0.02  # a partial packet older than this [s] is dropped one byte at a time
MIN_SLEEP = 2e-4  # a reply due sooner than this [s] goes out at once
RETURN_DELAY_UNIT = 2e-6  # [s] per RETURN_DELAY_TIME unit (both vendors)


class EmulatedChain:
    """Servos of one bus answering on a pty, joint motion from a `Plant`.

    Args:
        servos: the emulated servos, in the bus spec's order.
        codec: the bus protocol.
        baudrate: bus rate [bit/s]; bytes take 10 / baudrate [s] each on the wire.
        plant: joint physics; by default a `FirstOrderPlant` starting at zero.
        faults: fault injection hook (fault profiles); `NoFaults` by default.
    """

    def __init__(self, servos: list[EmulatedServo], codec: Codec, baudrate: int,
                 plant: Plant | None = None, faults: FaultHook | None = None):
        self.servos, self.codec, self.baudrate = servos, codec, baudrate
        self.plant = plant or FirstOrderPlant(np.zeros(len(servos)))
        self.faults: FaultHook = faults or NoFaults()
        self.lock = threading.RLock()  # held while the thread steps or answers
        self.packets = 0  # instruction packets received
        self._master = self._slave = -1
        self.port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._t = time.monotonic()
        with self.lock:
            self._store(0.0, *self.plant.state(), self._t)
            for servo in servos:
                servo.setpoint = servo.position_rad()

    @classmethod
    def from_bus_spec(cls, spec: BusSpec, plant: Plant | None = None, faults: FaultHook | None = None,
                      positions_rad: np.ndarray | None = None) -> EmulatedChain:
        """The chain of a robot's bus; a first-order plant at `positions_rad` (default 0)
        unless a `plant` is given."""
        codec = codec_for(spec.protocol)
        servos = [EmulatedServo(s, table_for(s.model), codec, spec.baudrate) for s in spec.servos]
        if plant is None and positions_rad is not None:
            plant = FirstOrderPlant(np.asarray(positions_rad, dtype=float))
        return cls(servos, codec, spec.baudrate, plant, faults)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty and start answering; returns the port path to open."""
        if self._thread is not None:
            return self.port
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # the slave stays open here, so the master never sees EIO
        self.port = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"emulated-chain {self.port}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        os.close(self._master)
        os.close(self._slave)

    def __enter__(self) -> EmulatedChain:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- access for tests, tools and fault profiles ------------------------------------
    def servo(self, servo_id: int) -> EmulatedServo:
        for servo in self.servos:
            if servo.id == servo_id:
                return servo
        raise KeyError(f"no emulated servo {servo_id}; ids {[s.id for s in self.servos]}")

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the wire toward the driver (noise, a stray reply)."""
        os.write(self._master, data)

    # --- the thread --------------------------------------------------------------------
    def _serve(self) -> None:
        buffer, received = b"", time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], POLL)
            now = time.monotonic()
            with self.lock:
                self._advance(now)
            if ready:
                try:
                    chunk = os.read(self._master, 4096)
                except OSError:
                    continue
                buffer, received = buffer + self.faults.incoming(chunk), now
            elif buffer and now - received > STALE:
                buffer = buffer[1:]  # no more bytes will complete it
            buffer = self._handle(buffer, received)

    def _handle(self, buffer: bytes, received: float) -> bytes:
        """Answer every complete packet in `buffer`; returns the unparsed rest."""
        while buffer:
            try:
                packet, consumed = self.codec.find_packet(buffer)
            except ChecksumError as e:
                buffer = buffer[e.consumed:]
                continue
            if packet is None:
                return buffer[consumed:]
            buffer = buffer[consumed:]
            t = received + consumed * BITS_PER_BYTE / self.baudrate  # end of the request on the wire
            with self.lock:
                self.packets += 1
                listening = {s.id: s for s in self.servos if not s.silent}
                for servo in listening.values():
                    if packet.id in (servo.id, self.codec.broadcast_id):
                        servo.last_heard = received
                self._advance(time.monotonic())
                replies = respond(self.codec, listening, packet)
            for servo_id, reply in replies:
                reply, extra = self.faults.outgoing(servo_id, reply)
                delay = listening[servo_id].get(Reg.RETURN_DELAY_TIME) * RETURN_DELAY_UNIT
                t += delay + extra + len(reply) * BITS_PER_BYTE / self.baudrate
                pause = t - time.monotonic()
                if pause > MIN_SLEEP:  # shorter waits would overshoot more than they wait
                    time.sleep(pause)
                if reply:
                    os.write(self._master, reply)
        return buffer

    def _advance(self, now: float) -> None:
        """Step the servos and the plant from the last step to `now` [s] (monotonic)."""
        dt = min(now - self._t, MAX_STEP)
        if dt < MIN_STEP:
            return
        positions, _ = self.plant.state()
        setpoints = np.array([s.advance_setpoint(dt, float(q)) for s, q in zip(self.servos, positions)])
        enabled = np.array([s.torque_on for s in self.servos])
        self._store(dt, *self.plant.step(dt, setpoints, enabled), now)
        self.faults.tick(self, now)

    def _store(self, dt: float, positions: np.ndarray, velocities: np.ndarray, now: float) -> None:
        self._t = now
        chain_load = sum(abs(s.load) for s in self.servos)
        for servo, q, v in zip(self.servos, positions, velocities):
            servo.update(dt, float(q), float(v), chain_load, now)
