"""sim_scenes.placement: seeded, non-overlapping placement inside the workspace."""

import itertools

import numpy as np
import pytest

import robots
from robots import WorkspaceSpec
from sim_scenes import PlacementError, SimScenesError, tasks
from sim_scenes.placement import place
from sim_scenes.props import Prop
from sim_scenes.scene import build_scene

PROPS = [Prop("bin0", "bin", 0.05), Prop("cube0", "cube", 0.025), Prop("cube1", "cube", 0.025), Prop("cube2", "cube", 0.025)]
WS = WorkspaceSpec(center=(0.3, 0.0), size=(0.3, 0.4), object_size=0.025)


def test_places_without_overlap_inside_workspace():
    for seed in range(10):
        xy = place(PROPS, WS, np.random.default_rng(seed), margin=0.005)
        assert set(xy) == {p.name for p in PROPS}
        for p in PROPS:
            assert np.all(np.abs(xy[p.name] - WS.center) <= np.divide(WS.size, 2))
        for a, b in itertools.combinations(PROPS, 2):
            assert np.linalg.norm(xy[a.name] - xy[b.name]) >= a.radius + b.radius + 0.005


def test_seeded():
    a = place(PROPS, WS, np.random.default_rng(3), margin=0.0)
    b = place(PROPS, WS, np.random.default_rng(3), margin=0.0)
    c = place(PROPS, WS, np.random.default_rng(4), margin=0.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_tiny_workspace_raises():
    tiny = WorkspaceSpec(center=(0.3, 0.0), size=(0.02, 0.02), object_size=0.025)
    with pytest.raises(PlacementError) as exc:
        place(PROPS, tiny, np.random.default_rng(0), margin=0.005)
    assert isinstance(exc.value, SimScenesError)
    assert "workspace" in str(exc.value) and "cube0" in str(exc.value)


def test_task_reset_in_tiny_workspace_raises():
    import dataclasses

    spec = robots.load("so100")
    spec = dataclasses.replace(spec, workspace=dataclasses.replace(spec.workspace, size=(0.03, 0.03)))
    task = tasks.get("stack")(spec)
    scene = build_scene(spec, task)
    with pytest.raises(PlacementError):
        task.reset(scene, np.random.default_rng(0))
