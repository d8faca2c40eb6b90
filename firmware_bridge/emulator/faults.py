"""Where fault injection plugs into an emulated chain. The chain calls a `FaultHook` on
every chunk of bytes it receives, on every reply it is about to send, and once per physics
step. `NoFaults` passes everything through; `FaultInjector` plays a `FaultProfile`
(emulator/profile.py) and records every fault it injects, so a test or a bench can check
that the fault monitor saw each one.

Packet faults touch the servos' replies only: a lost or garbled request looks the same to
the driver as a lost reply (silence), and a lost sync write has no reply that could tell
anyone; the next cycle's write replaces it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from firmware_bridge import encoding
from firmware_bridge.emulator.profile import (Brownout, Disconnect, FaultProfile, Glitch, Overheat, Overload,
                                              Stall, TimedFault, start_of)
from firmware_bridge.emulator.servo import AMBIENT, EmulatedServo
from firmware_bridge.tables import Area, Reg

if TYPE_CHECKING:
    from firmware_bridge.emulator.chain import EmulatedChain


class FaultHook(Protocol):
    def incoming(self, data: bytes) -> bytes:
        """Bytes the servos hear, given what the driver sent (drop or corrupt them here)."""
        ...

    def outgoing(self, servo_id: int, reply: bytes) -> tuple[bytes, float]:
        """(bytes sent instead of `reply`, extra delay before them [s]); b"" drops the reply."""
        ...

    def tick(self, chain: EmulatedChain, now: float) -> None:
        """Called after each physics step, under the chain's lock (time `now` [s], monotonic):
        may change servo state (temperature, position glitches, resets)."""
        ...


class NoFaults:
    """A hook that changes nothing."""

    def incoming(self, data: bytes) -> bytes:
        return data

    def outgoing(self, servo_id: int, reply: bytes) -> tuple[bytes, float]:
        return reply, 0.0

    def tick(self, chain: EmulatedChain, now: float) -> None:
        pass


@dataclass(frozen=True)
class InjectedFault:
    """One fault as injected.

    Attributes:
        t: `time.monotonic()` when it began [s] (the same clock in every process of a host).
        kind: "drop", "corrupt", "latency", or a timed kind ("overheat", "stall", "overload",
            "glitch", "disconnect", "brownout").
        servo: the servo id it hit, None for the whole bus.
        detail: what exactly (e.g. "bit 37", "+0.500 rad").
    """

    t: float
    kind: str
    servo: int | None
    detail: str = ""

    def to_dict(self) -> dict:
        return {"t": self.t, "kind": self.kind, "servo": self.servo, "detail": self.detail}


class FaultInjector:
    """A `FaultHook` that plays a profile. Packet decisions come from a generator seeded with
    `seed` (the profile's by default): the same seed and the same replies give the same faults.

    Args:
        profile: what to inject.
        seed: overrides the profile's seed.
        stop_at: no new fault begins this long after the first physics step [s] (lets a
            bench end with every injected fault already seen); faults under way run out.
        clock: monotonic time [s], for the packet faults' records.
    """

    def __init__(self, profile: FaultProfile, seed: int | None = None, stop_at: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.profile = profile
        self.seed = profile.seed if seed is None else seed
        self.schedule: tuple[TimedFault, ...] = profile.schedule(self.seed)
        self.stop_at = stop_at
        self.injected: list[InjectedFault] = []
        self._rng = random.Random(self.seed)
        self._clock = clock
        self._lock = threading.Lock()  # outgoing() runs outside the chain's lock
        self._t0: float | None = None
        self._begun: set[int] = set()  # schedule indices that have begun
        self._ended: set[int] = set()
        self._pins: dict[int, float] = {}  # stalled servo id -> joint angle it is stuck at [rad]

    # --- records -----------------------------------------------------------------------
    def _record(self, t: float, kind: str, servo: int | None, detail: str = "") -> None:
        with self._lock:
            self.injected.append(InjectedFault(t, kind, servo, detail))

    def counts(self) -> dict[str, int]:
        """Injected faults per kind."""
        out: dict[str, int] = {}
        for fault in list(self.injected):
            out[fault.kind] = out.get(fault.kind, 0) + 1
        return out

    def _elapsed(self, now: float) -> float | None:
        return None if self._t0 is None else now - self._t0

    def _may_begin(self, elapsed: float | None, start: float) -> bool:
        return elapsed is not None and elapsed >= start and (self.stop_at is None or elapsed < self.stop_at)

    # --- the hook ----------------------------------------------------------------------
    def incoming(self, data: bytes) -> bytes:
        return data

    def outgoing(self, servo_id: int, reply: bytes) -> tuple[bytes, float]:
        p, now = self.profile.packets, self._clock()
        with self._lock:  # three draws per reply, whatever happens: decisions stay aligned
            drop, corrupt, late = self._rng.random(), self._rng.random(), self._rng.random()
            bits = [self._rng.randrange(8 * len(reply)) for _ in range(p.corrupt_bits)] if corrupt < p.corrupt else []
        if not self._may_begin(self._elapsed(now), p.start):
            return reply, 0.0
        if drop < p.drop:
            self._record(now, "drop", servo_id)
            return b"", 0.0
        if bits and reply:
            flipped = bytearray(reply)
            for bit in bits:
                flipped[bit // 8] ^= 1 << (bit % 8)
            self._record(now, "corrupt", servo_id, "bits " + ",".join(map(str, bits)))
            reply = bytes(flipped)
        if late < p.latency:
            self._record(now, "latency", servo_id, f"{p.latency_s * 1e3:.0f} ms")
            return reply, p.latency_s
        return reply, 0.0

    def tick(self, chain: EmulatedChain, now: float) -> None:
        if self._t0 is None:
            self._t0 = now
        elapsed = now - self._t0
        for index, fault in enumerate(self.schedule):
            if index in self._ended:
                continue
            if index not in self._begun:
                if not self._may_begin(elapsed, start_of(fault)):
                    continue
                self._begun.add(index)
                servo = self._servo_id(chain, fault)
                self._record(now, KIND[type(fault)], servo, _detail(fault))
            if APPLY[type(fault)](self, chain, fault, elapsed):
                self._ended.add(index)

    # --- timed faults: each returns True once it is over -------------------------------
    @staticmethod
    def _servo_id(chain: EmulatedChain, fault: TimedFault) -> int | None:
        servo = getattr(fault, "servo", None)
        if servo is not None and servo < 0:  # a random glitch's slot
            choices = [s.id for s in chain.servos]
            return choices[(-1 - servo) % len(choices)]
        return servo

    def _overheat(self, chain: EmulatedChain, f: Overheat, elapsed: float) -> bool:
        servo = chain.servo(f.servo)
        if elapsed < f.end:
            servo.temperature = max(servo.temperature, min(f.peak, AMBIENT + f.rate * (elapsed - f.start)))
            return False
        hot = min(f.peak, AMBIENT + f.rate * (f.end - f.start))
        servo.temperature = min(servo.temperature, max(AMBIENT, hot - f.rate * (elapsed - f.end)))
        return servo.temperature <= AMBIENT

    def _stall(self, chain: EmulatedChain, f: Stall, elapsed: float) -> bool:
        index = [s.id for s in chain.servos].index(f.servo)
        servo = chain.servo(f.servo)
        if elapsed >= f.end:
            self._pins.pop(f.servo, None)
            return True
        q = self._pins.setdefault(f.servo, servo.position_rad())
        positions = getattr(chain.plant, "positions", None)
        if positions is not None:  # a plant that can be held (FirstOrderPlant): the joint is stuck
            positions[index] = q
        _report_position(servo, q)
        servo.set(Reg.PRESENT_VELOCITY, 0)
        _max_load(servo)
        return False

    def _overload(self, chain: EmulatedChain, f: Overload, elapsed: float) -> bool:
        servo = chain.servo(f.servo)
        if elapsed >= f.end:
            return True
        _max_load(servo)
        if f.trip:
            bit = [b for b, name in servo.model.error_bits.items() if name == "overload"]
            servo.set(Reg.HARDWARE_ERROR_STATUS, servo.get(Reg.HARDWARE_ERROR_STATUS) | (1 << bit[0]))
        return False

    def _glitch(self, chain: EmulatedChain, f: Glitch, elapsed: float) -> bool:
        servo = chain.servo(self._servo_id(chain, f) or 0)
        if elapsed >= f.at + f.duration:
            return True  # the next physics step stores the true position again
        _report_position(servo, servo.position_rad() + f.jump)
        return False

    def _disconnect(self, chain: EmulatedChain, f: Disconnect, elapsed: float) -> bool:
        over = elapsed >= f.end
        for servo in chain.servos:
            servo.silent = not over
        return over

    def _brownout(self, chain: EmulatedChain, f: Brownout, elapsed: float) -> bool:
        over = elapsed >= f.at + f.duration
        for servo in chain.servos:
            servo.silent = not over
            if over:
                _power_on_reset(servo, chain.baudrate)
        return over


def _report_position(servo: EmulatedServo, q_rad: float) -> None:
    m, s = servo.model, servo.spec
    servo.set(Reg.PRESENT_POSITION, encoding.radians_to_ticks(q_rad, m.resolution, s.direction, s.offset))


def _max_load(servo: EmulatedServo) -> None:
    """Effort register and load state at the servo's maximum (sign of the pull toward the goal)."""
    sign = 1.0 if servo.goal_rad() >= servo.position_rad() else -1.0
    servo.load = sign
    m = servo.model
    effort = sign if m.effort is Reg.PRESENT_LOAD else sign * servo.physics.stall_current
    servo.set(m.effort, round(servo.spec.direction * effort / m.effort_unit))


def _power_on_reset(servo: EmulatedServo, baudrate: int) -> None:
    """What a servo does when its supply dips below its reset threshold: RAM registers
    back to power-on values (torque off, error bits clear), the goal at the present position."""
    fresh = EmulatedServo(servo.spec, servo.model, servo.codec, baudrate)
    keep = {reg: servo.get(reg) for reg in servo.model.registers if reg.name.startswith("PRESENT_")}
    for r in servo.model.registers.values():
        if r.area is Area.RAM:
            servo.memory[r.address:r.address + r.size] = fresh.memory[r.address:r.address + r.size]
    for reg, value in keep.items():
        servo.set(reg, value)
    servo.set(Reg.GOAL_POSITION, servo.get(Reg.PRESENT_POSITION))
    servo.setpoint = servo.position_rad()
    servo.load = 0.0


def _detail(fault: TimedFault) -> str:
    return ", ".join(f"{k}={v}" for k, v in vars(fault).items() if k != "servo")


KIND: dict[type, str] = {Overheat: "overheat", Stall: "stall", Overload: "overload", Glitch: "glitch",
                         Disconnect: "disconnect", Brownout: "brownout"}
APPLY: dict[type, Callable[[FaultInjector, EmulatedChain, TimedFault, float], bool]] = {
    Overheat: FaultInjector._overheat, Stall: FaultInjector._stall, Overload: FaultInjector._overload,
    Glitch: FaultInjector._glitch, Disconnect: FaultInjector._disconnect, Brownout: FaultInjector._brownout,
}
