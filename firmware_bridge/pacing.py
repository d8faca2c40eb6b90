"""Pacing a control loop on a small computer and a flaky bus.

`sleep_until` sleeps, then busy-waits the last `spin` seconds: `time.sleep` wakes up late by
milliseconds on a loaded 2-core machine, which alone breaks a 2 ms period-error budget.
`retry` repeats a bus action that lost its reply (dropped or late packets are normal on
cheap servos), waiting twice as long after each failure, and lets the last BridgeError
through. The waits let a transient pass that retrying at once would only hit again: a USB
adapter's hiccup, a servo rebooting after a brownout, the emulator's thread starved on a
loaded machine. With the defaults a setup step gives up after about 0.15 s of waiting.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from firmware_bridge.errors import BridgeError

SPIN_S = 2e-3  # [s] busy-waited before each deadline
T = TypeVar("T")


def sleep_until(deadline: float, spin: float = SPIN_S) -> None:
    """Return at `deadline` (a `time.perf_counter()` value) or right away when it has passed."""
    while (now := time.perf_counter()) < deadline:
        if deadline - now > spin:
            time.sleep(deadline - now - spin)


def retry(action: Callable[[], T], attempts: int = 5, backoff: float = 0.01) -> T:
    """`action()`, asked again after a BridgeError, at most `attempts` times in all; the
    k-th failure (from 0) is followed by a wait of `backoff * 2**k` [s]."""
    for attempt in range(attempts):
        try:
            return action()
        except BridgeError:
            if attempt == attempts - 1:
                raise
            time.sleep(backoff * 2**attempt)
    raise ValueError(f"attempts must be >= 1, found {attempts}")
