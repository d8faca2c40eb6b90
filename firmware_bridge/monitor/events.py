"""What the fault monitor reads each cycle, what it decides, and what it logs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.state import BusState


class Reaction(enum.IntEnum):
    """Graded reactions, mildest first; the strongest one of the active faults is applied.

    NONE: follow the targets. RETRY: follow them; a read was asked again (logged).
    HOLD: stay at the hold pose. SLOW_STOP: move to the safe pose at the slow speed, then stay.
    TORQUE_OFF: cut torque on every servo (latched until `SafeController.resume()`).
    """

    NONE = 0
    RETRY = 1
    HOLD = 2
    SLOW_STOP = 3
    TORQUE_OFF = 4

    @classmethod
    def named(cls, name: str) -> Reaction:
        return cls[name.upper()]


# Instantaneous events: logged where they happen, never a fault with a state.
RETRY, LATENCY, COMMAND_LIMIT, COMMAND_JUMP = "retry", "latency", "command_limit", "command_jump"


@dataclass(frozen=True)
class Reading:
    """One cycle as the monitor sees it.

    Attributes:
        now: `time.monotonic()` of the check [s].
        state: the bus state read this cycle, None when the read failed.
        error: why the read failed ("" when it did not).
        missed: replies that had to be asked again during this cycle.
        read_s: duration of the read [s].
        torque: torque enable per servo when it was read this cycle, else None.
        command: the last targets sent [rad] (servo order), None before the first.
        torque_expected: whether the controller left torque on.
        at_rest: whether a slow stop has brought the commands to the safe pose.
    """

    now: float
    state: BusState | None
    error: str = ""
    missed: int = 0
    read_s: float = 0.0
    torque: np.ndarray | None = None
    command: np.ndarray | None = None
    torque_expected: bool = True
    at_rest: bool = False


@dataclass(frozen=True)
class Finding:
    """A check's observation this cycle: `kind` on servo index `index` (None: the bus)."""

    kind: str
    index: int | None
    value: float
    threshold: float
    detail: str = ""


@dataclass(frozen=True)
class Event:
    """One black-box entry.

    Attributes:
        t: `time.monotonic()` [s].
        kind: a fault kind (robots.safety.FAULT_KINDS) or an instantaneous kind (retry, latency,
            command_limit, command_jump) or a controller note (start, shutdown, reaction ...).
        what: "raised", "escalated", "cleared", "occurred", "clipped", or a controller note.
        servo: servo id, None for the whole bus.
        joint: the joint that servo drives ("" for the bus).
        reaction: the reaction now applied for this event (name).
        value, threshold: what was measured and the limit it crossed (units of the kind).
        detail: free text.
    """

    t: float
    kind: str
    what: str
    servo: int | None = None
    joint: str = ""
    reaction: str = ""
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class Verdict:
    """The monitor's decision for one cycle.

    Attributes:
        reaction: the strongest reaction of the active faults (RETRY after a retry event).
        cause: the fault kind that set it ("" when NONE or RETRY).
        active: (kind, servo id or None) of every active fault.
        events: the events of this cycle.
    """

    reaction: Reaction
    cause: str = ""
    active: tuple[tuple[str, int | None], ...] = ()
    events: tuple[Event, ...] = field(default=())
