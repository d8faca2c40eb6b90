"""Scripted-expert demonstrations into a store, resumed after interruption; the data CLI."""

import av
import numpy as np
import pytest
import zarr

import robots
from embodied.cli.main import main
from embodied.collect.simgen import SimgenConfig, generate
from embodied.data import EpisodeStore
from embodied.errors import SchemaMismatch
from sim_scenes import SimScenesError


@pytest.fixture(scope="module")
def koch_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("simgen") / "koch_lift.zarr"
    first = generate(SimgenConfig("koch", "lift", 2, out, workers=2), progress=False)
    resumed = generate(SimgenConfig("koch", "lift", 3, out, workers=1), progress=False)
    return out, first, resumed


def test_generates_successful_demonstrations(koch_store):
    out, first, resumed = koch_store
    assert first["kept"] == 2 and resumed == {"kept": 1, "failed": 0, "skipped_existing": 2}
    store = EpisodeStore.open(out)
    spec = robots.load("koch")
    assert store.num_episodes == 3 and store.seeds() == {0, 1, 2} and store.robot == "koch"
    assert store.attrs["spec"]["name"] == "koch"
    for i in range(3):
        ep = store.episode(i)
        assert ep.success and ep.source == "sim" and "cube" in ep.task
        np.testing.assert_allclose(np.diff(ep.timestamp), 1 / spec.control_hz, rtol=1e-4)
        lo = [j.range[0] for j in spec.joints] + [0.0]
        hi = [j.range[1] for j in spec.joints] + [1.0]
        assert np.all(ep.action >= np.array(lo) - 1e-5) and np.all(ep.action <= np.array(hi) + 1e-5)
        assert set(ep.images) == {"top", "side"} and ep.images["top"].std() > 5
        # where the named cube is, per camera and frame; lift has no goal
        assert set(ep.role_pixels) == {"top", "side"} and ep.role_pixels["top"].shape == (len(ep), 2, 2)
        assert np.isfinite(ep.role_pixels["top"][:, 0]).all() and np.isnan(ep.role_pixels["top"][:, 1]).all()
        # the observation follows the commanded action: the arm tracks the expert
        assert np.abs(ep.state[-1, :-1] - ep.action[-2, :-1]).max() < 0.1


def test_store_holds_one_expert_pace(koch_store, tmp_path):
    assert EpisodeStore.open(koch_store[0]).attrs["expert_pace"] == 1.0
    slow = tmp_path / "slow.zarr"
    assert main(["simgen", "--robot", "koch", "--task", "lift", "--episodes", "1", "--out", str(slow), "--workers", "1",
                 "--pace", "0.5"]) == 0
    store = EpisodeStore.open(slow)
    assert store.attrs["expert_pace"] == 0.5 and store.seeds() == {0}
    assert len(store.episode(0).action) > 1.5 * len(EpisodeStore.open(koch_store[0]).episode(0).action)
    with pytest.raises(SchemaMismatch, match="expert_pace 0.5, not 1.0; generate with --pace 0.5"):
        generate(SimgenConfig("koch", "lift", 2, slow), progress=False)
    assert EpisodeStore.open(slow).num_episodes == 1
    assert main(["simgen", "--robot", "koch", "--task", "lift", "--episodes", "1", "--out", str(tmp_path / "bad.zarr"),
                 "--pace", "0"]) == 2
    assert not (tmp_path / "bad.zarr").exists()


def test_store_holds_one_expert_version(koch_store, tmp_path):
    """A store records the experts' version and is not extended by another one."""
    from sim_scenes import experts

    assert EpisodeStore.open(koch_store[0]).attrs["expert_version"] == experts.VERSION
    old = tmp_path / "old.zarr"
    assert main(["simgen", "--robot", "koch", "--task", "lift", "--episodes", "1", "--out", str(old), "--workers", "1"]) == 0
    EpisodeStore.open(old, "r+").set_attr("expert_version", experts.VERSION - 1)
    with pytest.raises(SchemaMismatch, match=f"expert version {experts.VERSION - 1}; the experts are now version"):
        generate(SimgenConfig("koch", "lift", 2, old), progress=False)
    assert EpisodeStore.open(old).num_episodes == 1


def test_camera_jitter_moves_the_views_of_the_same_demonstration(koch_store, tmp_path):
    """--camera-jitter records the same expert in the same layout (seed 0: same actions) seen
    from moved scene cameras; the store holds one jitter."""
    moved = tmp_path / "moved.zarr"
    assert main(["simgen", "--robot", "koch", "--task", "lift", "--episodes", "1", "--out", str(moved), "--workers", "1",
                 "--camera-jitter", "0.5"]) == 0
    store, nominal = EpisodeStore.open(moved), EpisodeStore.open(koch_store[0])
    assert store.attrs["scene_camera_jitter"] == 0.5 and nominal.attrs["scene_camera_jitter"] == 0.0
    a, b = nominal.episode(0), store.episode(0)
    np.testing.assert_array_equal(a.action, b.action)
    for cam in ("top", "side"):
        assert np.abs(a.images[cam][0].astype(int) - b.images[cam][0]).mean() > 5
        assert np.abs(a.role_pixels[cam][0, 0] - b.role_pixels[cam][0, 0]).max() > 0.02
    with pytest.raises(SchemaMismatch, match="scene_camera_jitter 0.5, not 0.0; generate with --camera-jitter 0.5"):
        generate(SimgenConfig("koch", "lift", 2, moved), progress=False)
    assert main(["simgen", "--robot", "koch", "--task", "lift", "--episodes", "1", "--out", str(tmp_path / "bad.zarr"),
                 "--camera-jitter", "2"]) == 2
    assert not (tmp_path / "bad.zarr").exists()


def test_place_records_its_release_and_retreat_by_default(tmp_path):
    """A place demonstration goes on 0.5 s after success unless told otherwise (the task's
    settle time): the same actions up to success, then the release and retreat, the cube still
    in the bin at the end; with --settle 0 it ends the step its gripper opens. A store holds
    one settle time, and one made before stores recorded it held 0."""
    short, settled = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main(["simgen", "--robot", "so100", "--task", "place", "--episodes", "1", "--out", str(short),
                 "--workers", "1", "--settle", "0"]) == 0
    generate(SimgenConfig("so100", "place", 1, settled), progress=False)
    a, b = (EpisodeStore.open(p).episode(0) for p in (short, settled))
    extra = round(0.5 * robots.load("so100").control_hz)
    assert b.success and len(b.action) == len(a.action) + extra
    np.testing.assert_array_equal(b.action[:len(a.action)], a.action)

    def open_at_end(ep) -> int:
        closed = np.flatnonzero(ep.action[:, -1] < 0.05)
        return len(ep.action) - 1 - int(closed[-1])

    assert open_at_end(a) <= 3 and open_at_end(b) >= extra
    assert EpisodeStore.open(settled).attrs["expert_settle"] == 0.5
    with pytest.raises(SchemaMismatch, match="expert_settle 0.5, not 0.0; generate with --settle 0.5"):
        generate(SimgenConfig("so100", "place", 2, settled, settle=0.0), progress=False)
    with pytest.raises(SchemaMismatch, match="expert_settle 0.0, not 0.5; generate with --settle 0.0"):
        generate(SimgenConfig("so100", "place", 2, short), progress=False)  # made before the default changed
    del zarr.open_group(str(short), mode="r+").attrs["expert_settle"]  # as before stores recorded it
    with pytest.raises(SchemaMismatch, match="expert_settle 0.0, not 0.5"):
        generate(SimgenConfig("so100", "place", 2, short), progress=False)
    assert main(["simgen", "--robot", "so100", "--task", "place", "--episodes", "1", "--out",
                 str(tmp_path / "bad.zarr"), "--settle", "-1"]) == 2
    assert not (tmp_path / "bad.zarr").exists()


def test_store_holds_one_task(koch_store):
    """Extending a store with another task would skip the seeds it holds and mix two tasks."""
    out = koch_store[0]
    assert EpisodeStore.open(out).attrs["sim_task"] == "lift"
    with pytest.raises(SchemaMismatch, match="sim_task lift, not push; generate with --task lift"):
        generate(SimgenConfig("koch", "push", 5, out), progress=False)
    assert EpisodeStore.open(out).num_episodes == 3


def test_resume_refuses_another_robot(koch_store):
    out = koch_store[0]
    with pytest.raises(SchemaMismatch, match="one store per robot"):
        generate(SimgenConfig("so100", "lift", 5, out), progress=False)


def test_data_cli(koch_store, tmp_path, capsys):
    out = koch_store[0]
    assert main(["data", "info", str(out), "--episodes"]) == 0
    text = capsys.readouterr().out
    assert "robot koch" in text and "3 episodes" in text and "seed=2" in text
    video = tmp_path / "ep1.mp4"
    assert main(["data", "view", str(out), "--episode", "1", "--out", str(video)]) == 0
    with av.open(str(video)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == EpisodeStore.open(out).episode_meta(1)["length"]
    assert main(["data", "filter", str(out), str(tmp_path / "f.zarr"), "--delete", "0,2"]) == 0
    assert EpisodeStore.open(tmp_path / "f.zarr").seeds() == {1}
    assert main(["data", "stats", str(out)]) == 0
    assert '"q99"' in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "missing.zarr")]) == 2
    assert "not an episode store" in capsys.readouterr().err


def test_variants_demonstrate_one_scene_with_every_target(tmp_path):
    out = tmp_path / "pairs.zarr"
    summary = generate(SimgenConfig("koch", "lift", 3, out, workers=2, variants=3), progress=False)
    store = EpisodeStore.open(out)
    assert summary["kept"] == 3 and store.seeds() == {0}
    episodes = list(store)
    assert len({ep.task for ep in episodes}) == 3  # three cubes named
    np.testing.assert_array_equal(episodes[0].images["top"][0], episodes[2].images["top"][0])  # one scene
    assert np.abs(episodes[0].action[-1] - episodes[1].action[-1]).max() > 0.05  # other actions
    with pytest.raises(SimScenesError, match="--variants 4: task 'lift' has 3 role variants"):
        generate(SimgenConfig("koch", "lift", 4, out, variants=4), progress=False)
