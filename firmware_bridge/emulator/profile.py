"""Fault profiles: which faults an emulated chain suffers and when, as data (TOML).

    profile = load_profile("flaky")            # firmware_bridge/emulator/profiles/flaky.toml
    profile = load_profile("my_faults.toml")   # or any file

A profile has packet faults (per reply, drawn from a seeded generator) and timed faults,
each an array of tables named after its kind. Times are [s] after the chain's first
physics step; servos are bus ids. See `profiles/harsh.toml` for every kind:

    seed = 0
    [packets]            drop = 0.05, corrupt = 0.0, corrupt_bits = 1, latency = 0.01, latency_s = 0.02
    [[overheat]]         servo, start, rate [degC/s], peak [degC], end (then cools at `rate`)
    [[stall]]            servo, start, end        position stops tracking, load at its maximum
    [[overload]]         servo, start, end, trip  load at its maximum (trip: the servo's overload bit)
    [[glitch]]           servo, at, jump [rad], duration [s]   a spurious position reading
    [random_glitches]    rate [1/s], jump, duration, servos    glitches at seeded random times
    [[disconnect]]       start, end               the port goes silent
    [[brownout]]         at, duration             silent, then every servo resets (RAM to defaults)
"""

from __future__ import annotations

import dataclasses
import math
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.errors import FaultProfileError, UnknownFaultProfile

PROFILE_DIR = Path(__file__).parent / "profiles"
NEVER = math.inf


@dataclass(frozen=True)
class PacketFaults:
    """Faults drawn per reply: probabilities [0, 1], spike length [s]."""

    drop: float = 0.0
    corrupt: float = 0.0
    corrupt_bits: int = 1
    latency: float = 0.0
    latency_s: float = 0.02
    start: float = 0.0


@dataclass(frozen=True)
class Overheat:
    """Temperature of `servo` ramps up at `rate` [degC/s] from `start` [s] to `peak` [degC],
    and back down at `rate` after `end` [s]; past its limit the servo sets its own overheating bit."""

    servo: int
    start: float
    rate: float = 2.0
    peak: float = 90.0
    end: float = NEVER


@dataclass(frozen=True)
class Stall:
    """`servo` stops following its goal from `start` to `end` [s]; its load is at the maximum."""

    servo: int
    start: float
    end: float


@dataclass(frozen=True)
class Overload:
    """`servo` reports maximum load from `start` to `end` [s]; with `trip` it also sets its
    overload error bit (which its shutdown mask turns into torque off)."""

    servo: int
    start: float
    end: float
    trip: bool = False


@dataclass(frozen=True)
class Glitch:
    """`servo` reports its position off by `jump` [rad] from `at` for `duration` [s]."""

    servo: int
    at: float
    jump: float = 0.5
    duration: float = 0.1


@dataclass(frozen=True)
class Disconnect:
    """No servo answers from `start` to `end` [s] (a loose cable, an unplugged adapter)."""

    start: float
    end: float


@dataclass(frozen=True)
class Brownout:
    """Supply dip at `at` [s]: servos silent for `duration` [s], then reset (torque off, goal =
    present position, RAM registers and error bits back to power-on values)."""

    at: float
    duration: float = 0.05


@dataclass(frozen=True)
class RandomGlitches:
    """Encoder glitches at random times (a Poisson process of `rate` [1/s]) on `servos`
    (all when empty), each of `jump` [rad] for `duration` [s], up to `horizon` [s]."""

    rate: float = 0.0
    jump: float = 0.5
    duration: float = 0.1
    servos: tuple[int, ...] = ()
    horizon: float = 300.0


TimedFault = Overheat | Stall | Overload | Glitch | Disconnect | Brownout
TIMED: dict[str, type] = {"overheat": Overheat, "stall": Stall, "overload": Overload, "glitch": Glitch,
                          "disconnect": Disconnect, "brownout": Brownout}


@dataclass(frozen=True)
class FaultProfile:
    """A named set of faults; `seed` makes its random parts reproducible."""

    name: str
    description: str = ""
    seed: int = 0
    packets: PacketFaults = PacketFaults()
    timed: tuple[TimedFault, ...] = ()
    random_glitches: RandomGlitches = RandomGlitches()

    def schedule(self, seed: int | None = None) -> tuple[TimedFault, ...]:
        """Every timed fault, the random glitches drawn from `seed` (the profile's by default)
        included, sorted by start time. Same seed, same schedule. A random glitch's `servo`
        is a slot: `servos[slot % len(servos)]`, resolved against the chain's ids."""
        rng = random.Random(self.seed if seed is None else seed)
        g, drawn, t = self.random_glitches, [], 0.0
        while g.rate > 0:
            t += rng.expovariate(g.rate)
            if t >= g.horizon:
                break
            drawn.append(Glitch(-1 - rng.randrange(1 << 30), round(t, 6), g.jump, g.duration))
        return tuple(sorted((*self.timed, *drawn), key=start_of))


def start_of(fault: TimedFault) -> float:
    """When a timed fault begins [s]."""
    return getattr(fault, "start", getattr(fault, "at", 0.0))


def _build(cls: type, data: dict[str, Any], source: str, where: str) -> Any:
    """A dataclass from a TOML table, each field type-checked, unknown keys rejected."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise FaultProfileError(source, f"{where}.{key}", "unknown field", f"use {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING:
                raise FaultProfileError(source, f"{where}.{name}", "missing", f"add '{name} = ...'")
            continue
        value, kind = data[name], str(f.type)
        ok = {"int": isinstance(value, int) and not isinstance(value, bool), "bool": isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "tuple[int, ...]": isinstance(value, list) and all(isinstance(v, int) for v in value)}[kind]
        if not ok:
            raise FaultProfileError(source, f"{where}.{name}", f"expected {kind}, found {value!r}", "correct the type")
        kwargs[name] = tuple(value) if kind.startswith("tuple") else float(value) if kind == "float" else value
    for name in ("drop", "corrupt", "latency"):
        if not 0.0 <= kwargs.get(name, 0.0) <= 1.0:
            raise FaultProfileError(source, f"{where}.{name}", f"{kwargs[name]} is no probability", "use 0 ... 1")
    return cls(**kwargs)


def parse_profile(text: str, source: str = "<string>") -> FaultProfile:
    """A `FaultProfile` from TOML text; `FaultProfileError` names the field that is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FaultProfileError(source, "<file>", f"not valid TOML ({e})", "fix the syntax") from e
    top = {"name", "description", "seed", "packets", "random_glitches", *TIMED}
    for key in data:
        if key not in top:
            raise FaultProfileError(source, key, "unknown key", f"use {', '.join(sorted(top))}")
    timed = []
    for kind, cls in TIMED.items():
        tables = data.get(kind, [])
        if not isinstance(tables, list):
            raise FaultProfileError(source, kind, "expected an array of tables", f"write [[{kind}]]")
        timed += [_build(cls, t, source, f"{kind}[{i}]") for i, t in enumerate(tables)]
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise FaultProfileError(source, "seed", f"expected an integer, found {seed!r}", "write seed = 0")
    return FaultProfile(name=str(data.get("name", Path(source).stem)), description=str(data.get("description", "")),
                        seed=seed, packets=_build(PacketFaults, data.get("packets", {}), source, "packets"),
                        timed=tuple(timed),
                        random_glitches=_build(RandomGlitches, data.get("random_glitches", {}), source,
                                               "random_glitches"))


def available_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> FaultProfile:
    """A shipped profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise FaultProfileError(str(path), "<file>", "no such file", "check the path")
        return parse_profile(path.read_text(), str(path))
    shipped = PROFILE_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise UnknownFaultProfile(str(name_or_path), available_profiles())
    return parse_profile(shipped.read_text(), str(shipped))
