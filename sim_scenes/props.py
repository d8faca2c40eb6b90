"""Task objects: cubes (free bodies), bins and zones (mocap bodies, moved at reset).

Sizes scale with the robot's `workspace.object_size` (the cube edge `s`), so the same task
reads the same on a 0.3 m hobby arm and a 0.85 m industrial arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco

from sim_scenes.arena import PROP_CONAFFINITY, PROP_CONTYPE

COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.1, 1.0),
    "green": (0.15, 0.65, 0.2, 1.0),
    "blue": (0.12, 0.3, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
    "purple": (0.55, 0.2, 0.7, 1.0),
    "orange": (0.98, 0.5, 0.05, 1.0),
}

CUBE_DENSITY = 400.0  # [kg/m^3], wood
BIN_INNER, BIN_WALL, BIN_HEIGHT = 2.2, 0.15, 0.8  # in units of the cube edge
ZONE_SIDE = 2.6  # in units of the cube edge


@dataclass(frozen=True)
class Prop:
    """A named object in the scene; `radius` is its footprint for placement [m]."""

    name: str
    kind: str  # "cube", "bin", "zone"
    radius: float


def add_cube(spec: mujoco.MjSpec, name: str, s: float) -> Prop:
    body = spec.worldbody.add_body(name=name, pos=[0, 0, s / 2])
    body.add_freejoint(name=name)
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[s / 2] * 3, density=CUBE_DENSITY,
                  friction=[1.2, 0.01, 0.001], condim=4, rgba=COLORS["red"],
                  contype=PROP_CONTYPE, conaffinity=PROP_CONAFFINITY)
    return Prop(name, "cube", 1.0 * s)  # room for the open fingers around it


def add_bin(spec: mujoco.MjSpec, name: str, s: float) -> Prop:
    """Open box: floor and four walls on one mocap body; the geoms share the name prefix."""
    inner, wall, height = BIN_INNER * s, BIN_WALL * s, BIN_HEIGHT * s
    body = spec.worldbody.add_body(name=name, mocap=True, pos=[0, 0, 0])
    kw = dict(type=mujoco.mjtGeom.mjGEOM_BOX, rgba=COLORS["blue"], contype=PROP_CONTYPE, conaffinity=PROP_CONAFFINITY)
    body.add_geom(name=f"{name}_floor", size=[inner / 2 + wall, inner / 2 + wall, wall / 2], pos=[0, 0, wall / 2], **kw)
    off = inner / 2 + wall / 2
    for i, (x, y, sx, sy) in enumerate([(off, 0, wall / 2, inner / 2 + wall), (-off, 0, wall / 2, inner / 2 + wall),
                                        (0, off, inner / 2, wall / 2), (0, -off, inner / 2, wall / 2)]):
        body.add_geom(name=f"{name}_wall{i}", size=[sx, sy, height / 2], pos=[x, y, height / 2], **kw)
    return Prop(name, "bin", 0.72 * (inner + 2 * wall))


def add_zone(spec: mujoco.MjSpec, name: str, s: float) -> Prop:
    """Flat coloured square on the table, visual only."""
    side = ZONE_SIDE * s
    body = spec.worldbody.add_body(name=name, mocap=True, pos=[0, 0, 0])
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[side / 2, side / 2, 0.0005], pos=[0, 0, 0.0005],
                  rgba=COLORS["green"], contype=0, conaffinity=0)
    return Prop(name, "zone", 0.72 * side)
