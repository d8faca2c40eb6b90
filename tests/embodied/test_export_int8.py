"""embodied.export_int8: static int8 calibration on dataset frames, candidates measured and recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embodied.data.episode import Episode
from embodied.data.store import EpisodeStore
from embodied.errors import InvalidInput
from embodied.export import export_policy
from embodied.export_int8 import (DYNAMIC_RECIPES, STATIC_RECIPES, Calibration, Candidate, Recipe, choose,
                                  dataset_observations)
from embodied.runtime import PolicyEngine, load_bundle

TASKS = ["pick up the red cube", "lift the green cube"]
FRAMES = 30  # per episode


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A real so100 EpisodeStore on disk: two episodes of smooth random frames."""
    path = tmp_path_factory.mktemp("calib") / "so100.zarr"
    s = EpisodeStore.create(path, "so100", 30.0, 6, 6, {"front": (96, 96), "wrist": (96, 96)})
    rng = np.random.default_rng(0)
    for e, task in enumerate(TASKS):
        coarse = rng.uniform(0, 255, (FRAMES, 4, 4, 3))
        frames = np.clip(np.repeat(np.repeat(coarse, 24, 1), 24, 2), 0, 255).astype(np.uint8)
        s.append(Episode(state=rng.normal(size=(FRAMES, 6)).astype(np.float32),
                         action=rng.normal(size=(FRAMES, 6)).astype(np.float32),
                         timestamp=(np.arange(FRAMES) / 30).astype(np.float32),
                         images={"front": frames, "wrist": frames[:, ::-1]}, task=task, success=True, seed=e))
    return path


@pytest.mark.parametrize("kind", ["policy", "pooled_policy"])
def test_static_candidates_compete_on_held_out_dataset_frames(tmp_path, store, request, kind):
    policy, cal = request.getfixturevalue(kind), Calibration(str(store), frames=8, heldout=4)
    m = export_policy(policy, "so100", tmp_path / "b", TASKS[:1], quantize_int8=True, bound=1.0, heldout=4,
                      recipes=(DYNAMIC_RECIPES[0], STATIC_RECIPES[0]), calibration=cal)
    i8 = m["models"]["int8"]
    assert [(c["recipe"], c["mode"]) for c in i8["candidates"]] == [(DYNAMIC_RECIPES[0].name, "dynamic"),
                                                                     (STATIC_RECIPES[0].name, "static")]
    assert all(0 < c["relative_error"] < 1 and c["latency_p50_ms"] > 0 for c in i8["candidates"])
    assert sum(c["chosen"] for c in i8["candidates"]) == 1
    chosen = next(c for c in i8["candidates"] if c["chosen"])
    assert i8["recipe"]["name"] == chosen["recipe"] and i8["relative_error"] == chosen["relative_error"]
    assert i8["calibration"] == {"data": str(store), "frames": 8, "heldout": 4, "seed": 0}
    assert m["gate"]["heldout"] == 4 and "held out from calibration" in m["gate"]["metric"]
    tokens = ["language_token_mask.npy", "language_tokens.npy"] if kind == "policy" else []
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["language.npy", *tokens, "manifest.json",
                                                                  "policy_fp32.onnx", "policy_int8.onnx"]
    engine = PolicyEngine(load_bundle(tmp_path / "b", "so100"), precision="int8")
    obs = dataset_observations(cal, "so100", TASKS[:1])[0]
    assert np.isfinite(engine.infer(obs).actions).all()


def test_static_recipe_quantizes_convs_into_the_graph(tmp_path, store, policy):
    import onnx

    m = export_policy(policy, "so100", tmp_path / "b", TASKS[:1], quantize_int8=True, bound=1.0, heldout=2,
                      recipes=STATIC_RECIPES[:1], calibration=Calibration(str(store), frames=4, heldout=2))
    assert m["models"]["int8"]["recipe"]["mode"] == "static"
    nodes = onnx.load(str(tmp_path / "b" / "policy_int8.onnx")).graph.node
    producer = {out: n.op_type for n in nodes for out in n.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    # QDQ around every image-encoder Conv: input and weight quantized with ranges fixed ahead of time
    assert convs and all(producer.get(n.input[0]) == producer.get(n.input[1]) == "DequantizeLinear" for n in convs)


def test_dataset_observations_are_seeded_disjoint_and_use_exported_instructions(store):
    cal = Calibration(str(store), frames=10, heldout=5, seed=3)
    a, b = dataset_observations(cal, "so100", TASKS[:1]), dataset_observations(cal, "so100", TASKS[:1])
    assert len(a) == 15 and all(np.array_equal(x.state, y.state) for x, y in zip(a, b))
    assert len({x.state.tobytes() for x in a}) == 15  # no frame twice
    assert {x.instruction for x in a} == {TASKS[0]}  # the second episode's task is not exported
    assert all(set(x.images) == {"front", "wrist"} and x.images["front"].shape == (96, 96, 3) for x in a)
    both = dataset_observations(cal, "so100", TASKS)
    assert {x.instruction for x in both} == set(TASKS)


def test_calibration_data_that_cannot_serve_is_refused(tmp_path, store):
    with pytest.raises(InvalidInput, match="holds robot 'so100', the bundle is for 'panda'"):
        dataset_observations(Calibration(str(store)), "panda", TASKS)
    with pytest.raises(InvalidInput, match=r"has 60 frames, calibration needs 80 .*--calibration-frames"):
        dataset_observations(Calibration(str(store), frames=64, heldout=16), "so100", TASKS)
    with pytest.raises(InvalidInput, match="is not a dataset"):
        dataset_observations(Calibration(str(tmp_path)), "so100", TASKS)


def test_choice_is_the_fastest_candidate_well_inside_the_bound():
    def cand(name: str, err: float, ms: float) -> Candidate:
        return Candidate(Recipe(name), Path(name), err, ms)

    found = [cand("accurate_slow", 0.010, 3.0), cand("close_fast", 0.02, 2.0), cand("fastest_bad", 0.04, 1.0)]
    assert choose(found, bound=0.05).recipe.name == "close_fast"  # 0.04 is past half the bound
    assert choose(found, bound=0.1).recipe.name == "fastest_bad"
    assert choose(found, bound=0.015).recipe.name == "accurate_slow"  # none within 0.0075: the most accurate
