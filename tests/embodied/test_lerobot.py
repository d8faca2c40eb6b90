"""LeRobot v3.0 export, import and in-place reading, on real parquet and mp4 files."""

import json
import pickle

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embodied.cli.main import main
from embodied.data import Episode, EpisodeStore
from embodied.data.lerobot import LeRobotSource, export_lerobot, import_lerobot
from embodied.data.lerobot_format import tasks_table
from embodied.errors import CorruptStore, UnsupportedFormat

CAMERAS = {"front": (48, 64), "wrist": (32, 32)}
LENGTHS = (20, 33, 7)


def smooth_frames(t: int, h: int, w: int, phase: float) -> np.ndarray:
    """Moving smooth gradients: what a codec at high quality keeps within a few levels."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    i = np.arange(t, dtype=np.float32)[:, None, None]
    r = 128 + 90 * np.sin(x / 16 + i * 0.2 + phase)
    g = 128 + 90 * np.cos(y / 18 - i * 0.1)
    b = 128 + 60 * np.sin((x + y) / 20 + phase)
    return np.stack([r, g, np.broadcast_to(b, r.shape)], -1).astype(np.uint8)


def make_store(path, lengths=LENGTHS) -> EpisodeStore:
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path, "so100", 30.0, 6, 6, CAMERAS, spec={"name": "so100"})
    for e, t in enumerate(lengths):
        store.append(Episode(
            state=rng.normal(size=(t, 6)).astype(np.float32), action=rng.normal(size=(t, 6)).astype(np.float32),
            timestamp=(np.arange(t) / 30.0).astype(np.float32),
            images={c: smooth_frames(t, h, w, e + k) for k, (c, (h, w)) in enumerate(CAMERAS.items())},
            task=f"pick the cube {e % 2}", success=e != 1, source="sim", seed=100 + e))
    return store


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    store = make_store(root / "src.zarr")
    export_lerobot(store, root / "lerobot")
    return store, root / "lerobot"


def test_export_writes_the_v3_layout(exported):
    store, out = exported
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30 and info["robot_type"] == "so100"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    front = info["features"]["observation.images.front"]
    assert front["dtype"] == "video" and front["shape"] == [48, 64, 3] and front["info"]["video.codec"] == "h264"
    assert info["features"]["action"]["shape"] == [6]
    for rel in ("meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                "data/chunk-000/file-000.parquet", "videos/observation.images.front/chunk-000/file-000.mp4",
                "videos/observation.images.wrist/chunk-000/file-000.mp4"):
        assert (out / rel).is_file(), rel
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert episodes["dataset_to_index"] == np.cumsum(LENGTHS).tolist()
    assert episodes["videos/observation.images.wrist/from_timestamp"][1] == pytest.approx(LENGTHS[0] / 30)
    with av.open(str(out / "videos/observation.images.front/chunk-000/file-000.mp4")) as c:
        assert c.streams.video[0].frames == sum(LENGTHS)
    assert not (out.parent / "lerobot.partial").exists()


def test_round_trip_store_lerobot_store(exported, tmp_path):
    store, out = exported
    report = import_lerobot(out, tmp_path / "back.zarr")
    assert (report.episodes, report.frames, report.skipped) == (3, sum(LENGTHS), [])
    back = EpisodeStore.open(tmp_path / "back.zarr")
    assert back.robot == "so100" and back.fps == 30 and back.cameras == CAMERAS
    assert np.array_equal(back.episode_ends, store.episode_ends)
    assert back.attrs["spec"] == {"name": "so100"}
    for a, b in zip(store, back):
        assert np.array_equal(a.state, b.state) and np.array_equal(a.action, b.action)
        assert np.array_equal(a.timestamp, b.timestamp)
        assert (a.task, a.success, a.source, a.seed) == (b.task, b.success, b.source, b.seed)
        for cam in CAMERAS:
            err = np.abs(a.images[cam].astype(np.int16) - b.images[cam]).mean()
            assert err < 3, (cam, err)


def test_source_reads_the_same_frames_as_the_store(exported):
    store, out = exported
    src = LeRobotSource(out)
    assert (src.robot, src.fps, src.cameras, src.num_frames) == ("so100", 30.0, CAMERAS, store.num_frames)
    assert np.array_equal(src.episode_ends, store.episode_ends)
    assert src.episode_meta(1) == {**store.episode_meta(1), "tasks": [store.episode_meta(1)["task"]]}
    assert np.array_equal(src.read("action", 5, 40), store.read("action", 5, 40))
    assert src.stats()["observation.state"]["mean"] == pytest.approx(store.stats()["observation.state"]["mean"])
    key = "observation.images.front"
    for start, stop in ((0, 16), (16, 32), (15, 31), (50, 60), (3, 9), (0, store.num_frames)):  # chunks, back and forth
        err = np.abs(src.read(key, start, stop).astype(np.int16) - store.read(key, start, stop)).mean()
        assert err < 3, (start, stop, err)
    clone = pickle.loads(pickle.dumps(src))  # loader worker processes get a copy without open files
    assert np.array_equal(clone.read(key, 40, 44), src.read(key, 40, 44))


def write_v3(root, episodes, fps=10, version="v3.0"):
    """A LeRobot dataset with one image-in-parquet camera, built the way `datasets` stores it:
    PNG bytes in a {bytes, path} struct per frame."""
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    tasks = sorted({task for task, *_ in episodes})
    rows, frames, start = [], {k: [] for k in ("observation.state", "action", "observation.images.top",
                                               "timestamp", "frame_index", "episode_index", "index", "task_index")}, 0
    for e, (task, state, action, images) in enumerate(episodes):
        t = len(state)
        rows.append({"episode_index": e, "tasks": [task], "length": t, "data/chunk_index": 0, "data/file_index": 0,
                     "dataset_from_index": start, "dataset_to_index": start + t})
        frames["observation.state"] += state.tolist()
        frames["action"] += action.tolist()
        frames["observation.images.top"] += [{"bytes": png(im), "path": f"frame_{start + i}.png"}
                                             for i, im in enumerate(images)]
        frames["timestamp"] += (np.arange(t) / fps).astype(np.float32).tolist()
        frames["frame_index"] += list(range(t))
        frames["episode_index"] += [e] * t
        frames["index"] += list(range(start, start + t))
        frames["task_index"] += [tasks.index(task)] * t
        start += t
    h, w = episodes[0][3].shape[1:3]
    schema = pa.schema([("observation.state", pa.list_(pa.float32(), 2)), ("action", pa.list_(pa.float32(), 3)),
                        ("observation.images.top", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
                        ("index", pa.int64()), ("task_index", pa.int64())])
    pq.write_table(pa.table(frames, schema=schema), root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(tasks_table(tasks), root / "meta/tasks.parquet")
    features = {"observation.state": {"dtype": "float32", "shape": [2], "names": None},
                "action": {"dtype": "float32", "shape": [3], "names": None},
                "observation.images.top": {"dtype": "image", "shape": [h, w, 3], "names": ["height", "width", "channel"]},
                **{k: {"dtype": "int64", "shape": [1], "names": None}
                   for k in ("frame_index", "episode_index", "index", "task_index")},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None}}
    info = {"codebase_version": version, "robot_type": "koch", "fps": fps, "total_episodes": len(episodes),
            "total_frames": start, "total_tasks": len(tasks), "chunks_size": 1000, "splits": {"train": "0:1"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "video_path": None,
            "features": features}
    (root / "meta/info.json").write_text(json.dumps(info))
    return root


def png(image: np.ndarray) -> bytes:
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = image.shape[1], image.shape[0], "rgb24"
    packets = ctx.encode(av.VideoFrame.from_ndarray(image, format="rgb24")) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


def image_episodes(nan_episode=None):
    rng = np.random.default_rng(1)
    eps = []
    for e, t in enumerate((4, 6, 5)):
        action = rng.normal(size=(t, 3)).astype(np.float32)
        if e == nan_episode:
            action[2, 1] = np.nan
        eps.append((f"task {e % 2}", rng.normal(size=(t, 2)).astype(np.float32), action,
                    rng.integers(0, 256, (t, 12, 16, 3), dtype=np.uint8)))
    return eps


def test_import_image_in_parquet_is_exact(tmp_path):
    eps = image_episodes()
    report = import_lerobot(write_v3(tmp_path / "ds", eps), tmp_path / "out.zarr", robot="koch2")
    store = EpisodeStore.open(report.path)
    assert (store.robot, store.fps, store.cameras, len(store)) == ("koch2", 10.0, {"top": (12, 16)}, 3)
    for (task, state, action, images), ep in zip(eps, store):
        assert ep.task == task and ep.source == "import" and ep.success
        assert np.array_equal(ep.state, state) and np.array_equal(ep.action, action)
        assert np.array_equal(ep.images["top"], images)  # PNG is lossless


def test_nan_episode_is_skipped_with_a_warning(tmp_path):
    eps = image_episodes(nan_episode=1)
    with pytest.warns(UserWarning, match="episode 1 has NaN"):
        report = import_lerobot(write_v3(tmp_path / "ds", eps), tmp_path / "out.zarr")
    assert report.skipped == [1] and report.episodes == 2
    store = EpisodeStore.open(tmp_path / "out.zarr")
    assert np.array_equal(store.episode(1).action, eps[2][2])


def test_older_version_is_refused_with_the_fix(tmp_path):
    src = write_v3(tmp_path / "ds", image_episodes(), version="v2.1")
    with pytest.raises(UnsupportedFormat, match=r"v2\.1.*convert_dataset_v21_to_v30"):
        import_lerobot(src, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_missing_video_fails_cleanly_and_leaves_nothing(exported, tmp_path):
    import shutil

    _, out = exported
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    with pytest.raises(CorruptStore, match="file-000.mp4"):
        import_lerobot(broken, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.zarr.partial").exists()
    (broken / "data/chunk-000/file-000.parquet").write_bytes(b"not parquet")
    with pytest.raises(CorruptStore, match="file-000.parquet"):
        LeRobotSource(broken)


def test_cli_export_and_import(exported, tmp_path, capsys):
    store, _ = exported
    assert main(["data", "export-lerobot", str(store.path), str(tmp_path / "lr")]) == 0
    assert main(["data", "import-lerobot", str(tmp_path / "lr"), str(tmp_path / "back.zarr"), "--robot", "x"]) == 0
    assert "3 episodes" in capsys.readouterr().out
    assert EpisodeStore.open(tmp_path / "back.zarr").robot == "x"
    assert main(["data", "import-lerobot", str(tmp_path / "lr"), str(tmp_path / "back.zarr")]) == 2
    assert "already exists" in capsys.readouterr().err
