"""What `ServoBus.read_state()` returns, and how the registers it needs are grouped into
as few sync reads as possible (adjacent registers are read as one block)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from firmware_bridge.tables import Reg, ServoModel

MAX_GAP = 16  # unused bytes [bytes] read through rather than starting another sync read


@dataclass(frozen=True)
class BusState:
    """One snapshot of every servo on a bus, in the bus spec's servo order.

    Attributes:
        ids: servo ids.
        positions: joint angles [rad] (direction and offset of each servo applied).
        velocities: joint velocities [rad/s].
        loads: effort in the model's unit: [fraction of max torque] for models that report
            load (STS3215, XL430), [A] for models that report current (XL330, XM430, XM540).
        voltages: supply voltage at each servo [V].
        temperatures: [degC].
        error_bits: raw hardware error bits per servo (0 when all is well).
        errors: names of the error bits per servo.
        timestamp: `time.monotonic()` when the reply arrived [s].
    """

    ids: tuple[int, ...]
    positions: np.ndarray
    velocities: np.ndarray
    loads: np.ndarray
    voltages: np.ndarray
    temperatures: np.ndarray
    error_bits: np.ndarray
    errors: tuple[tuple[str, ...], ...]
    timestamp: float

    @property
    def ok(self) -> bool:
        """Whether no servo reports an error bit."""
        return not self.error_bits.any()


@dataclass(frozen=True)
class Block:
    """A run of adjacent registers read with one sync read: `length` bytes at `address`."""

    address: int
    length: int

    def slice(self, data: bytes, model: ServoModel, reg: Reg) -> bytes:
        """The bytes of `reg` within a block read from a servo of `model`."""
        r = model.register(reg)
        start = r.address - self.address
        return data[start:start + r.size]


def blocks_for(models: Sequence[ServoModel], regs: Iterable[Reg], max_gap: int = MAX_GAP) -> tuple[Block, ...]:
    """The fewest blocks that cover `regs` (those each model has) on every model in `models`;
    a gap of up to `max_gap` bytes between registers is read through."""
    spans = sorted({(m.registers[r].address, m.registers[r].address + m.registers[r].size)
                    for m in models for r in regs if r in m.registers})
    blocks: list[list[int]] = []
    for start, end in spans:
        if blocks and start <= blocks[-1][1] + max_gap:
            blocks[-1][1] = max(blocks[-1][1], end)
        else:
            blocks.append([start, end])
    return tuple(Block(start, end - start) for start, end in blocks)


def block_holding(blocks: Sequence[Block], model: ServoModel, reg: Reg) -> Block:
    """The block that covers `reg` of `model`."""
    r = model.register(reg)
    for block in blocks:
        if block.address <= r.address and r.address + r.size <= block.address + block.length:
            return block
    raise LookupError(f"{reg.name} of {model.name} lies in no block")
