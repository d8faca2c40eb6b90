"""The zarr episode store: round trips, refusals that keep saved data, crash safety."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import robots
from embodied.data import Episode, EpisodeStore, open_robot_store
from embodied.data.tools import filter_episodes, merge
from embodied.errors import CorruptStore, InvalidEpisode, SchemaMismatch

CAMS = {"front": (24, 32), "wrist": (24, 32)}


def make_episode(t: int, seed: int, task: str = "lift the red cube", success: bool = True) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(state=rng.normal(size=(t, 6)).astype(np.float32), action=rng.normal(size=(t, 6)).astype(np.float32),
                   timestamp=(np.arange(t) / 30).astype(np.float32),
                   images={c: rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8) for c, (h, w) in CAMS.items()},
                   task=task, success=success, seed=seed)


def new_store(path) -> EpisodeStore:
    return EpisodeStore.create(path, "so100", 30, 6, 6, CAMS, spec={"name": "so100"})


def test_round_trip(tmp_path):
    store = new_store(tmp_path / "s.zarr")
    eps = [make_episode(t, i, task=f"task {i % 2}", success=i != 1) for i, t in enumerate((5, 9, 3))]
    for ep in eps:
        store.append(ep)
    again = EpisodeStore.open(tmp_path / "s.zarr")
    assert again.num_episodes == 3 and again.num_frames == 17 and again.tasks == ["task 0", "task 1"]
    assert again.bounds(1) == (5, 14)
    for i, ep in enumerate(eps):
        got = again.episode(i)
        np.testing.assert_array_equal(got.action, ep.action)
        np.testing.assert_array_equal(got.state, ep.state)
        np.testing.assert_array_equal(got.images["wrist"], ep.images["wrist"])
        assert (got.task, got.success, got.seed, got.source) == (ep.task, ep.success, ep.seed, "sim")
    assert again.seeds() == {0, 1, 2}


def test_invalid_episodes_are_refused_and_saved_data_kept(tmp_path):
    store = new_store(tmp_path / "s.zarr")
    store.append(make_episode(4, 0))
    bad = make_episode(4, 1)
    bad.action[2, 3] = np.nan
    with pytest.raises(InvalidEpisode, match="NaN or inf .*frame 2"):
        store.append(bad)
    with pytest.raises(InvalidEpisode, match="3 dimensions, the store expects 6"):
        store.append(Episode(np.zeros((2, 3), np.float32), np.zeros((2, 6), np.float32), np.arange(2, dtype=np.float32)))
    wrong_cam = make_episode(3, 2)
    wrong_cam.images["side"] = wrong_cam.images.pop("front")
    with pytest.raises(InvalidEpisode, match="cameras"):
        store.append(wrong_cam)
    again = EpisodeStore.open(tmp_path / "s.zarr")
    assert again.num_episodes == 1
    np.testing.assert_array_equal(again.episode(0).action, make_episode(4, 0).action)


def test_read_only_and_existing_paths(tmp_path):
    new_store(tmp_path / "s.zarr").append(make_episode(3, 0))
    with pytest.raises(SchemaMismatch, match="read-only"):
        EpisodeStore.open(tmp_path / "s.zarr").append(make_episode(3, 1))
    with pytest.raises(SchemaMismatch, match="already exists"):
        new_store(tmp_path / "s.zarr")


def test_a_robot_store_is_created_then_appended_to_when_its_schema_matches(tmp_path):
    robot = robots.load("so100")
    created = open_robot_store(tmp_path / "s.zarr", robot, CAMS)
    assert created.schema() == {"robot": "so100", "fps": robot.control_hz, "state_dim": 6, "action_dim": 6,
                                "cameras": CAMS}
    created.append(make_episode(3, 0))
    again = open_robot_store(tmp_path / "s.zarr", robot, CAMS)
    assert again.writable and again.num_episodes == 1
    with pytest.raises(SchemaMismatch, match=r"holds .*'cameras': \{'front'.*but these episodes need .*'cameras': "
                                             r"\{\}.*one store per robot and camera set"):
        open_robot_store(tmp_path / "s.zarr", robot, {})
    with pytest.raises(SchemaMismatch, match="'robot': 'koch'"):
        open_robot_store(tmp_path / "s.zarr", robots.load("koch"), CAMS)
    assert EpisodeStore.open(tmp_path / "s.zarr").num_episodes == 1  # refusals keep saved episodes


def test_corrupt_stores_are_named(tmp_path):
    with pytest.raises(CorruptStore, match="not an episode store"):
        EpisodeStore.open(tmp_path / "nothing.zarr")
    new_store(tmp_path / "s.zarr").append(make_episode(3, 0))
    (tmp_path / "s.zarr" / "zarr.json").write_text("{ truncated")
    with pytest.raises(CorruptStore, match="s.zarr"):
        EpisodeStore.open(tmp_path / "s.zarr")
    new_store(tmp_path / "t.zarr").append(make_episode(3, 0))
    import shutil

    shutil.rmtree(tmp_path / "t.zarr" / "data" / "action")
    with pytest.raises(CorruptStore, match="missing or unreadable array"):
        EpisodeStore.open(tmp_path / "t.zarr")


WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    sys.path.insert(0, {tests!r})
    from test_store import make_episode, new_store
    store = new_store({path!r})
    for i in range(3):
        store.append(make_episode(7, i))

    class HangBeforeCommit:
        \"\"\"The commit marker's array: every frame and metadata row of the episode is
        already on disk when append reaches it, the most adversarial instant to die.\"\"\"
        def __init__(self, array):
            self.array = array
        def resize(self, shape):
            print("writing", flush=True)
            time.sleep(600)
        def __getattr__(self, name):
            return getattr(self.array, name)

    store._meta["episode_ends"] = HangBeforeCommit(store._meta["episode_ends"])
    store.append(make_episode(400, 99))
    print("finished", flush=True)
""")


def test_sigkill_mid_episode_keeps_earlier_episodes(tmp_path):
    path = str(tmp_path / "s.zarr")
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(tests=str(__import__("pathlib").Path(__file__).parent), path=path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"  # killed between the frames and the commit
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = EpisodeStore.open(path, "a")
    assert store.num_episodes == 3
    assert store.array("action").shape[0] > store.num_frames  # the dead episode's frames are there, uncommitted
    for i in range(3):
        np.testing.assert_array_equal(store.episode(i).images["front"], make_episode(7, i).images["front"])
    store.append(make_episode(5, 4))  # and the store keeps working
    assert EpisodeStore.open(path).num_episodes == 4


def test_reader_sees_a_consistent_prefix_while_another_appends(tmp_path):
    writer = new_store(tmp_path / "s.zarr")
    writer.append(make_episode(3, 0))
    reader = EpisodeStore.open(tmp_path / "s.zarr")
    writer.append(make_episode(4, 1))
    assert reader.num_episodes == 1  # until refreshed
    reader.refresh()
    assert reader.num_episodes == 2 and reader.bounds(1) == (3, 7)


def test_stats_are_cached_and_refreshed(tmp_path):
    store = new_store(tmp_path / "s.zarr")
    store.append(make_episode(50, 0))
    s1 = store.stats()
    assert np.allclose(s1["action"]["mean"], make_episode(50, 0).action.mean(0), atol=1e-5)
    assert EpisodeStore.open(tmp_path / "s.zarr").attrs["stats"]["frames"] == 50
    store.append(make_episode(50, 1))
    assert store.stats()["action"]["count"][0] == 100


def test_merge_and_filter(tmp_path):
    a, b = new_store(tmp_path / "a.zarr"), new_store(tmp_path / "b.zarr")
    a.append(make_episode(3, 0))
    b.append(make_episode(4, 1, success=False))
    b.append(make_episode(5, 2))
    m = merge(tmp_path / "m.zarr", [tmp_path / "a.zarr", tmp_path / "b.zarr"])
    assert m.num_episodes == 3 and m.num_frames == 12
    f = filter_episodes(tmp_path / "m.zarr", tmp_path / "f.zarr", lambda meta: meta["success"])
    assert [f.episode_meta(i)["seed"] for i in range(f.num_episodes)] == [0, 2]
    assert EpisodeStore.open(tmp_path / "m.zarr").num_episodes == 3  # source untouched
    other = EpisodeStore.create(tmp_path / "o.zarr", "koch", 30, 6, 6, {"top": (24, 32)})
    other.append(Episode(np.zeros((2, 6), np.float32), np.zeros((2, 6), np.float32), np.arange(2, dtype=np.float32),
                         {"top": np.zeros((2, 24, 32, 3), np.uint8)}))
    with pytest.raises(SchemaMismatch, match="differ in"):
        merge(tmp_path / "x.zarr", [tmp_path / "a.zarr", tmp_path / "o.zarr"])
    assert not (tmp_path / "x.zarr").exists()
