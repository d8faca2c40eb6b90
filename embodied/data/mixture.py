"""Mixture recipes: which datasets a training run pools, and with what weights.

A recipe is a TOML file, usually in `datasets/`::

    name = "example"                  # optional
    horizon = 16                      # optional loader defaults
    normalization = "mean_std"        # "mean_std" | "quantile" | "none"

    [[datasets]]
    path = "so100_lift.zarr"          # relative to the recipe file, or absolute
    weight = 2.0                      # relative sampling probability (> 0)

    [[datasets]]
    path = "/data/koch_place_lerobot"
    format = "lerobot"                # optional: "zarr" | "lerobot" (guessed from the folder)

    [[datasets]]
    path = "koch_push_scenes.zarr"
    imitate = false                   # optional (default true): its frames train only the grounding
                                      # loss (images and role-pixel labels), its actions are not imitated
    episodes = 20                     # optional: only its first 20 episodes (data-scaling curves)

Weights are probabilities of drawing a sample from each dataset (normalized to sum 1),
independent of dataset size. Errors name the recipe file and the entry.
"""

from __future__ import annotations

import difflib
import importlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied.data.subset import FirstEpisodes
from embodied.errors import DataError

FORMATS = ("zarr", "lerobot")
_TOP_KEYS = ("name", "horizon", "normalization", "datasets")
_ENTRY_KEYS = ("path", "weight", "format", "name", "imitate", "episodes")


class RecipeError(DataError):
    """A mixture recipe that cannot be used (names the recipe file and the entry)."""


class MissingDataset(RecipeError):
    """A recipe entry whose dataset path does not exist."""


@dataclass(frozen=True)
class MixtureEntry:
    path: Path  # resolved, absolute
    weight: float
    format: str  # one of FORMATS
    name: str
    imitate: bool = True  # False: grounding data, its actions are not imitated
    episodes: int | None = None  # only the first N episodes (None: all)


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    entries: tuple[MixtureEntry, ...]
    horizon: int | None = None
    normalization: str | None = None

    @property
    def weights(self) -> list[float]:
        total = sum(e.weight for e in self.entries)
        return [e.weight / total for e in self.entries]

    @property
    def imitate(self) -> list[bool]:
        return [e.imitate for e in self.entries]

    def open_sources(self) -> list[Any]:
        """Open every dataset as a FrameSource (EpisodeStore or LeRobotSource), read-only."""
        sources = []
        for i, e in enumerate(self.entries):
            try:
                source = open_source(e.path, e.format)
                sources.append(source if e.episodes is None else FirstEpisodes(source, e.episodes))
            except DataError as err:
                raise type(err)(f"{self.path} [datasets #{i + 1} {e.name!r}]: {err}") from err
        return sources


def _unknown(where: str, keys: set[str], allowed: tuple[str, ...]) -> str | None:
    for k in sorted(keys - set(allowed)):
        near = difflib.get_close_matches(k, allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"{where}: unknown key {k!r}{hint} (allowed: {', '.join(allowed)})"
    return None


def guess_format(path: Path) -> str | None:
    if (path / "zarr.json").is_file():
        return "zarr"
    if (path / "meta" / "info.json").is_file():
        return "lerobot"
    return None


def load_recipe(path: str | Path) -> Recipe:
    """Parse and check a recipe; every dataset path must exist."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MissingDataset(f"recipe {path} does not exist; recipes live in datasets/ (see datasets/README.md)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e})") from e

    def fail(msg: str, cls: type[RecipeError] = RecipeError) -> RecipeError:
        return cls(f"{path}: {msg}")

    if problem := _unknown("top level", set(data), _TOP_KEYS):
        raise fail(problem)
    items = data.get("datasets")
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        raise fail("expected one or more [[datasets]] tables with path and weight, found "
                   f"{type(items).__name__ if items is not None else 'none'}")
    horizon = data.get("horizon")
    if horizon is not None and (not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1):
        raise fail(f"horizon must be a positive integer, found {horizon!r}")
    norm = data.get("normalization")
    if norm is not None and norm not in ("mean_std", "quantile", "none"):
        raise fail(f"normalization must be 'mean_std', 'quantile' or 'none', found {norm!r}")

    entries = []
    for i, item in enumerate(items):
        where = f"[datasets #{i + 1}]"
        if problem := _unknown(where, set(item), _ENTRY_KEYS):
            raise fail(problem)
        raw = item.get("path")
        if not isinstance(raw, str) or not raw:
            raise fail(f"{where}: path must be a non-empty string, found {raw!r}")
        where = f"[datasets #{i + 1} {raw!r}]"
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise fail(f"{where}: weight must be a positive number, found {weight!r}")
        p = Path(raw).expanduser()
        p = (p if p.is_absolute() else path.parent / p).resolve()
        if not p.exists():
            raise fail(f"{where}: dataset {p} does not exist; generate it (`embodied simgen ... --out {p}`) "
                       "or fix the path (relative paths are relative to the recipe)", MissingDataset)
        fmt = item.get("format") or guess_format(p)
        if fmt not in FORMATS:
            raise fail(f"{where}: cannot tell the format of {p} (no zarr.json, no meta/info.json); "
                       f"set format to one of {FORMATS}, found {fmt!r}")
        name = item.get("name", Path(raw).name)
        if not isinstance(name, str):
            raise fail(f"{where}: name must be a string, found {name!r}")
        imitate = item.get("imitate", True)
        if not isinstance(imitate, bool):
            raise fail(f"{where}: imitate must be true or false, found {imitate!r}")
        episodes = item.get("episodes")
        if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1):
            raise fail(f"{where}: episodes must be a positive integer (the first N episodes), found {episodes!r}")
        entries.append(MixtureEntry(p, float(weight), fmt, name, imitate, episodes))
    name = data.get("name", path.stem)
    return Recipe(path, str(name), tuple(entries), horizon, norm)


def open_source(path: str | Path, fmt: str | None = None) -> Any:
    """Open one dataset read-only as a FrameSource."""
    path = Path(path)
    fmt = fmt or guess_format(path)
    if fmt == "zarr":
        from embodied.data.store import EpisodeStore

        return EpisodeStore.open(path, "r")
    if fmt == "lerobot":
        try:
            lerobot = importlib.import_module("embodied.data.lerobot")
        except ImportError as e:
            raise RecipeError(f"{path}: LeRobot datasets need embodied.data.lerobot ({e})") from e
        cls = lerobot.LeRobotSource
        return cls.open(path) if hasattr(cls, "open") else cls(path)
    raise RecipeError(f"{path}: unknown dataset format {fmt!r}; use one of {FORMATS}")
