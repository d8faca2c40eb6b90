"""Seeded, non-overlapping placement of props in the robot's workspace rectangle."""

from __future__ import annotations

import numpy as np

from robots import WorkspaceSpec
from sim_scenes.errors import PlacementError
from sim_scenes.props import Prop


def place(props: list[Prop], workspace: WorkspaceSpec, rng: np.random.Generator, margin: float,
          tries: int = 2000) -> dict[str, np.ndarray]:
    """Sample an (x, y) centre [m] for each prop inside the workspace so that footprints
    (radius + margin) do not overlap. Large props are placed first."""
    lo = np.asarray(workspace.center) - np.asarray(workspace.size) / 2
    hi = np.asarray(workspace.center) + np.asarray(workspace.size) / 2
    order = sorted(props, key=lambda p: -p.radius)
    for _ in range(20):  # restart when an early choice leaves no room
        placed: dict[str, np.ndarray] = {}
        for prop in order:
            for _ in range(tries // 20):
                xy = rng.uniform(lo, hi)
                if all(np.linalg.norm(xy - placed[o.name]) >= prop.radius + o.radius + margin
                       for o in order if o.name in placed):
                    placed[prop.name] = xy
                    break
            else:
                break
        if len(placed) == len(props):
            return placed
    raise PlacementError(
        f"cannot place {[p.name for p in props]} without overlap in a workspace of size {workspace.size} m; "
        "enlarge workspace.size or reduce workspace.object_size in robot.toml"
    )
