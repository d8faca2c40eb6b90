"""Emulated servo chains that answer the real wire protocols on a pseudo-terminal, and the
fault profiles they can be made to suffer."""

from firmware_bridge.emulator.chain import EmulatedChain
from firmware_bridge.emulator.faults import FaultHook, FaultInjector, InjectedFault, NoFaults
from firmware_bridge.emulator.plant import FirstOrderPlant, Plant
from firmware_bridge.emulator.profile import FaultProfile, available_profiles, load_profile, parse_profile
from firmware_bridge.emulator.servo import EmulatedServo

__all__ = ["EmulatedChain", "EmulatedServo", "FaultHook", "FaultInjector", "FaultProfile", "FirstOrderPlant",
           "InjectedFault", "NoFaults", "Plant", "available_profiles", "load_profile", "parse_profile"]
