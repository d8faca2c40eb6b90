"""Discovers robot folders: every directory holding a `robot.toml`.

Search path: the folders shipped inside this package, then each directory listed in
the environment variable EMBODIED_ROBOTS_PATH (os.pathsep separated). A robot can also be
loaded directly by the path of its folder or its robot.toml.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from robots.errors import SpecError, UnknownRobot
from robots.spec import RobotSpec, parse

PACKAGE_DIR = Path(__file__).resolve().parent


def _search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("EMBODIED_ROBOTS_PATH", "").split(os.pathsep) if p]
    return [PACKAGE_DIR, *extra]


def _folders() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in _search_dirs():
        for toml in sorted(root.glob("*/robot.toml")):
            name = toml.parent.name
            if name in found:
                raise SpecError(str(toml), "name", f"robot {name!r} is already defined in {found[name]}", "rename one of the folders")
            found[name] = toml
    return found


def available() -> list[str]:
    """Names of all robots on the search path, sorted."""
    return sorted(_folders())


def _load_file(toml: Path) -> RobotSpec:
    return _parse_cached(toml, toml.stat().st_mtime_ns)  # an edited robot.toml is read again


@lru_cache(maxsize=None)
def _parse_cached(toml: Path, mtime_ns: int) -> RobotSpec:
    spec = parse(toml)
    if spec.name != toml.parent.name:
        raise SpecError(str(toml), "name", f"name {spec.name!r} differs from the folder name {toml.parent.name!r}", "make them equal")
    return spec


def load(name_or_path: str | os.PathLike) -> RobotSpec:
    """Load a robot by registered name, or by the path of its folder or robot.toml."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return _load_file(path.resolve())
    if (path / "robot.toml").is_file() and (os.sep in str(name_or_path) or path.is_absolute()):
        return _load_file((path / "robot.toml").resolve())
    folders = _folders()
    if str(name_or_path) not in folders:
        raise UnknownRobot(str(name_or_path), sorted(folders))
    return _load_file(folders[str(name_or_path)].resolve())
