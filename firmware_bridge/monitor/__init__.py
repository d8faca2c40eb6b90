"""The fault monitor: checks every cycle -> events -> graded reactions, a black box, and a
controller that runs the loop through it and shuts down cleanly.

    Monitor          checks, fault states (raised / escalated / cleared), command clipping
    SafeController   read_state -> check -> reaction -> clip -> write_targets; shutdown
    BlackBox         JSON-lines event log, one file per run
    audit            injected faults (emulator) vs detected events
"""

from firmware_bridge.monitor.audit import all_detected, audit
from firmware_bridge.monitor.blackbox import BlackBox, format_entry, read_blackbox
from firmware_bridge.monitor.checks import Limits
from firmware_bridge.monitor.controller import RunSummary, SafeController, Step
from firmware_bridge.monitor.core import Monitor
from firmware_bridge.monitor.events import Event, Reaction, Reading, Verdict

__all__ = ["BlackBox", "Event", "Limits", "Monitor", "Reaction", "Reading", "RunSummary", "SafeController", "Step",
           "Verdict", "all_detected", "audit", "format_entry", "read_blackbox"]
