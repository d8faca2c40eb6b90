"""Did the monitor see every injected fault? Injected faults (the emulator's records) are
matched against black-box events: a fault counts as detected when an event of a kind that
betrays it follows within its window, on its servo where both name one.

    report = audit(injector.injected, monitor.events)   # {kind: {"injected", "detected", "missed"}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PACKET = frozenset({"retry", "bus_timeout", "latency", "stale"})
# A reply lost after the driver gave up on its request (the chain answers queued retries
# late, behind a latency spike) was already seen as that request's timeout.
PACKET_LEAD = 0.05


@dataclass(frozen=True)
class Sign:
    """Event kinds that betray an injected fault, the window after its start [s], and whether
    the event must name the same servo."""

    kinds: frozenset[str]
    window: float
    same_servo: bool = False
    lead: float = 0.0  # [s] an event this long before the fault also counts (see PACKET_LEAD)


# injected kind -> how the monitor sees it
SIGNS: dict[str, Sign] = {
    "drop": Sign(PACKET, 0.5, lead=PACKET_LEAD),
    "corrupt": Sign(PACKET, 0.5, lead=PACKET_LEAD),
    "latency": Sign(PACKET, 0.5, lead=PACKET_LEAD),
    "overheat": Sign(frozenset({"overheat"}), math.inf, same_servo=True),
    "stall": Sign(frozenset({"tracking", "overload"}), 3.0, same_servo=True),
    "overload": Sign(frozenset({"overload"}), 2.0, same_servo=True),
    "glitch": Sign(frozenset({"position_jump", "position_limit", "velocity_limit"}), 0.5, same_servo=True),
    "disconnect": Sign(frozenset({"bus_timeout", "stale"}), 1.0),
    "brownout": Sign(frozenset({"torque_lost"}), 2.0),
}


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def audit(injected: Iterable[Any], events: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Per injected kind: how many were injected, how many detected, and the times [s,
    monotonic] of the missed ones. Items are `InjectedFault` / `Event` objects or their dicts."""
    signals = [e for e in events if _get(e, "what") in ("raised", "occurred", "escalated")]
    report: dict[str, dict[str, Any]] = {}
    for fault in injected:
        kind = _get(fault, "kind")
        sign = SIGNS[kind]
        t, servo = _get(fault, "t"), _get(fault, "servo")
        seen = any(_get(e, "kind") in sign.kinds and t - sign.lead <= _get(e, "t") <= t + sign.window
                   and (not sign.same_servo or _get(e, "servo") in (None, servo)) for e in signals)
        entry = report.setdefault(kind, {"injected": 0, "detected": 0, "missed": []})
        entry["injected"] += 1
        entry["detected"] += seen
        if not seen:
            entry["missed"].append(round(t, 4))
    return report


def all_detected(report: Mapping[str, Mapping[str, Any]]) -> bool:
    return all(r["detected"] == r["injected"] for r in report.values())
