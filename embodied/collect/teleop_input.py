"""Teleoperation input sources: keyboard, gamepad (pygame) and scripted (tests, replays).

A source turns whatever the operator does into a `TeleopCommand` once per control tick:
an end-effector velocity in the robot base frame, a yaw rate, a gripper target and episode
events. Keyboard and gamepad read pygame's event queue, so headless tests drive the real
mapping by posting events with SDL_VIDEODRIVER=dummy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Protocol

EVENTS = ("start", "save", "discard", "rerecord", "quit")


@dataclass(frozen=True)
class TeleopCommand:
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ee velocity, fraction of max speed, base frame
    yaw_rate: float = 0.0  # fraction of max yaw rate
    gripper: float | None = None  # target opening in [0, 1]; None keeps the current one
    events: frozenset[str] = field(default_factory=frozenset)


class InputSource(Protocol):
    def poll(self) -> TeleopCommand: ...


class ScriptedInput:
    """Replays a list of commands, one per tick, then asks to quit."""

    def __init__(self, commands: Iterable[TeleopCommand]):
        self._commands = list(commands)
        self._i = 0

    def poll(self) -> TeleopCommand:
        if self._i >= len(self._commands):
            return TeleopCommand(events=frozenset({"quit"}))
        self._i += 1
        return self._commands[self._i - 1]


def _pygame():
    try:
        import pygame
    except ImportError as e:  # optional dependency
        raise ImportError("keyboard and gamepad teleoperation need pygame: pip install 'embodied[teleop]'") from e
    return pygame


TOGGLE_GRIPPER = "toggle_gripper"


class _PygameInput:
    """Shared by keyboard and gamepad: discrete presses (`DOWN` events whose `CODE` attribute
    is a key or button) map through `bindings()` to episode events or TOGGLE_GRIPPER."""

    DOWN: str  # pygame event type, e.g. "KEYDOWN"
    CODE: str  # attribute of that event naming what was pressed, e.g. "key"

    def __init__(self):
        self.pg = _pygame()
        self.pg.init()
        self.gripper_open = True

    def bindings(self) -> dict[int, frozenset[str]]:
        raise NotImplementedError

    def _presses(self) -> tuple[frozenset[str], float | None]:
        """Episode events and the new gripper target (None: unchanged) since the last poll."""
        pg, table, down = self.pg, self.bindings(), getattr(self.pg, self.DOWN)
        events: set[str] = set()
        gripper = None
        for e in pg.event.get():
            if e.type == pg.QUIT:
                events.add("quit")
            elif e.type == down:
                bound = table.get(getattr(e, self.CODE), frozenset())
                if TOGGLE_GRIPPER in bound:
                    self.gripper_open = not self.gripper_open
                    gripper = 1.0 if self.gripper_open else 0.0
                events |= bound - {TOGGLE_GRIPPER}
        return frozenset(events), gripper


class KeyboardInput(_PygameInput):
    """Arrows: x/y. W/S: up/down. Q/E: yaw. Space: toggle gripper.
    Enter: start / save. Backspace: discard. R: re-record. Esc: quit."""

    DOWN, CODE = "KEYDOWN", "key"

    def bindings(self) -> dict[int, frozenset[str]]:
        pg = self.pg
        return {pg.K_RETURN: frozenset({"start", "save"}), pg.K_BACKSPACE: frozenset({"discard"}),
                pg.K_r: frozenset({"rerecord"}), pg.K_ESCAPE: frozenset({"quit"}),
                pg.K_SPACE: frozenset({TOGGLE_GRIPPER})}

    def poll(self) -> TeleopCommand:
        pg = self.pg
        events, gripper = self._presses()
        keys = pg.key.get_pressed()
        axis = lambda plus, minus: float(keys[plus]) - float(keys[minus])  # noqa: E731
        velocity = (axis(pg.K_UP, pg.K_DOWN), axis(pg.K_LEFT, pg.K_RIGHT), axis(pg.K_w, pg.K_s))
        return TeleopCommand(velocity, axis(pg.K_q, pg.K_e), gripper, events)


class GamepadInput(_PygameInput):
    """Left stick: x/y. Right stick vertical: z. Bumpers: yaw. A: toggle gripper.
    Start: start / save. B: discard. Y: re-record. Back: quit."""

    DOWN, CODE = "JOYBUTTONDOWN", "button"
    DEADZONE = 0.1
    A, B, Y, LB, RB, BACK, START = 0, 1, 3, 4, 5, 6, 7  # SDL game controller layout (Xbox)

    def __init__(self, index: int = 0):
        super().__init__()
        self.pg.joystick.init()
        if self.pg.joystick.get_count() <= index:
            raise RuntimeError(f"no gamepad at index {index} ({self.pg.joystick.get_count()} connected); plug one in "
                               "or use --teleop keyboard")
        self.pad = self.pg.joystick.Joystick(index)

    def bindings(self) -> dict[int, frozenset[str]]:
        return {self.START: frozenset({"start", "save"}), self.B: frozenset({"discard"}),
                self.Y: frozenset({"rerecord"}), self.BACK: frozenset({"quit"}), self.A: frozenset({TOGGLE_GRIPPER})}

    def _axis(self, i: int) -> float:
        v = self.pad.get_axis(i)
        return 0.0 if abs(v) < self.DEADZONE else float(v)

    def poll(self) -> TeleopCommand:
        events, gripper = self._presses()
        yaw = float(self.pad.get_button(self.LB)) - float(self.pad.get_button(self.RB))
        return TeleopCommand((-self._axis(1), -self._axis(0), -self._axis(3)), yaw, gripper, events)


def make_input(kind: str) -> InputSource:
    if kind == "keyboard":
        return KeyboardInput()
    if kind == "gamepad":
        return GamepadInput()
    raise ValueError(f"unknown teleop input {kind!r}; use keyboard or gamepad (leader arms come with the hardware bridge)")


def headless() -> bool:
    return os.environ.get("SDL_VIDEODRIVER") == "dummy" or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

