"""Servo control tables as data, one module per vendor, and the lookup by model name."""

from __future__ import annotations

from firmware_bridge.errors import UnknownServoModel
from firmware_bridge.tables import dynamixel, feetech
from firmware_bridge.tables.base import (
    Access, Area, Encoding, Reg, Register, ServoModel, Signedness,
)


def _index(models: tuple[ServoModel, ...]) -> dict[str, ServoModel]:
    index: dict[str, ServoModel] = {}
    for model in models:
        if model.name in index:
            raise ValueError(f"servo model {model.name!r} is defined twice")
        index[model.name] = model
    return index


MODELS: dict[str, ServoModel] = _index(feetech.MODELS + dynamixel.MODELS)


def table_for(model: str) -> ServoModel:
    """The `ServoModel` named `model` (case-insensitive, e.g. "XL430-W250" or "sts3215").

    Raises:
        UnknownServoModel: with the closest known names.
    """
    try:
        return MODELS[model.strip().lower()]
    except KeyError:
        raise UnknownServoModel(model, sorted(MODELS)) from None


def model_for_number(protocol: str, model_number: int) -> ServoModel | None:
    """The model of `protocol` that reports `model_number` when pinged, if one is known."""
    for candidate in MODELS.values():
        if candidate.protocol == protocol and candidate.model_number == model_number:
            return candidate
    return None


__all__ = ["MODELS", "Access", "Area", "Encoding", "Reg", "Register", "ServoModel", "Signedness",
           "model_for_number", "table_for"]
