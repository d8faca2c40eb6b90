"""Emulated servo chains that answer the real wire protocols on a pseudo-terminal."""

from firmware_bridge.emulator.chain import EmulatedChain
from firmware_bridge.emulator.faults import FaultHook, NoFaults
from firmware_bridge.emulator.plant import FirstOrderPlant, Plant
from firmware_bridge.emulator.servo import EmulatedServo

__all__ = ["EmulatedChain", "EmulatedServo", "FaultHook", "FirstOrderPlant", "NoFaults", "Plant"]
