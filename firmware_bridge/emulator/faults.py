"""Where fault injection plugs into an emulated chain. The chain calls a `FaultHook` on
every chunk of bytes it receives, on every reply it is about to send, and once per physics
step; fault profiles (dropped or corrupted packets, latency spikes, stalls, overheating,
brownouts) implement it. `NoFaults` passes everything through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

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
