import json

import pytest
import torch

from embodied.errors import CheckpointMismatch, CorruptCheckpoint
from embodied.policy import load_adapter, load_checkpoint, save_adapter, save_checkpoint


def predict(policy, batch):
    return policy.predict(batch, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("head", ["l1", "flow"])
def test_round_trip_gives_identical_predictions(tmp_path, make_policy, make_batch, language, head):
    policy, batch = make_policy(head=head).eval(), make_batch()
    save_checkpoint(policy, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", robots_needed=["so100", "panda"], language=language)
    assert torch.equal(predict(policy, batch), predict(loaded, batch))
    assert loaded.config == policy.config and loaded.normalizer.to_dict() == policy.normalizer.to_dict()
    manifest = json.loads((tmp_path / "ckpt" / "manifest.json").read_text())
    assert manifest["chunk"] == 4 and manifest["encoders"]["language"]["name"].endswith("all-MiniLM-L6-v2")
    assert len(manifest["robots"]["panda"]["stats_sha256"]) == 64


def test_checkpoint_saved_before_token_language_loads_pooled(tmp_path, make_policy, make_batch, language):
    policy, batch = make_policy(language_tokens=0, film_queries=0).eval(), make_batch()
    save_checkpoint(policy, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    del config["language_tokens"], config["film_queries"]  # config.json as written before the fields existed
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(tmp_path / "ckpt", language=language)
    assert loaded.config.language_tokens == 0
    assert torch.equal(predict(policy, batch), predict(loaded, batch))


@pytest.fixture
def ckpt(tmp_path, make_policy):
    return save_checkpoint(make_policy(), tmp_path / "ckpt")


def test_unknown_robot(ckpt, language):
    with pytest.raises(CheckpointMismatch, match=r"no adapter for \['ur5e'\]"):
        load_checkpoint(ckpt, robots_needed=["ur5e"], language=language)


def test_stats_mismatch(ckpt, language, make_stats):
    with pytest.raises(CheckpointMismatch, match="statistics given for so100 differ"):
        load_checkpoint(ckpt, norm_stats={"so100": make_stats(6, seed=7)}, language=language)
    stats = json.loads((ckpt / "norm_stats.json").read_text())
    stats["robots"]["panda"]["actions"]["std"][0] *= 2
    (ckpt / "norm_stats.json").write_text(json.dumps(stats))
    with pytest.raises(CheckpointMismatch, match="statistics of panda do not match"):
        load_checkpoint(ckpt, language=language)


def test_missing_and_corrupted_files(ckpt, language):
    weights = (ckpt / "weights.safetensors").read_bytes()
    (ckpt / "weights.safetensors").write_bytes(weights[:-10])
    with pytest.raises(CorruptCheckpoint, match="sha256"):
        load_checkpoint(ckpt, language=language)
    (ckpt / "weights.safetensors").unlink()
    with pytest.raises(CorruptCheckpoint, match="missing"):
        load_checkpoint(ckpt, language=language)
    (ckpt / "config.json").unlink()
    with pytest.raises(CorruptCheckpoint, match="config.json is missing"):
        load_checkpoint(ckpt, language=language)


def test_changed_robot_spec(tmp_path, monkeypatch, make_robot, make_policy, language):
    monkeypatch.setenv("EMBODIED_ROBOTS_PATH", str(tmp_path / "robots"))
    (tmp_path / "robots").mkdir()
    folder = make_robot("myarm", parent=tmp_path / "robots")
    policy = make_policy()
    policy.add_robot("myarm", 6, 6, ["front", "wrist"])
    policy.normalizer.set("myarm", policy.normalizer.stats["so100"])
    save_checkpoint(policy, tmp_path / "ckpt")
    assert "myarm" in load_checkpoint(tmp_path / "ckpt", language=language).adapters.names
    toml = folder / "robot.toml"
    toml.write_text(toml.read_text().replace("control_hz = ", "control_hz = 1", 1))
    with pytest.raises(CheckpointMismatch, match="RobotSpec of myarm changed"):
        load_checkpoint(tmp_path / "ckpt", language=language)
    monkeypatch.delenv("EMBODIED_ROBOTS_PATH")
    with pytest.raises(CheckpointMismatch, match="not known here"):
        load_checkpoint(tmp_path / "ckpt", language=language)


def test_language_encoder_version(ckpt, language):
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["encoders"]["language"]["version"] = "0.0.1"
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointMismatch, match="language encoder"):
        load_checkpoint(ckpt, language=language)


@pytest.mark.parametrize("image_layers, trunk_rank", [(False, 0), (True, 0), (False, 2)])
def test_adapter_only_file(tmp_path, make_policy, make_batch, make_stats, language, image_layers, trunk_rank):
    base = save_checkpoint(make_policy(), tmp_path / "ckpt")
    policy = load_checkpoint(base, language=language)
    adapter = policy.add_robot("ur5e", 7, 7, ["front", "side"], image_layers=image_layers, trunk_rank=trunk_rank)
    if trunk_rank:
        with torch.no_grad():
            adapter.trunk_update.up[0].fill_(0.5)  # trained away from zero
    policy.normalizer.set("ur5e", make_stats(7))
    path = save_adapter(policy, "ur5e", base)
    assert path.stat().st_size < (base / "weights.safetensors").stat().st_size
    loaded = load_checkpoint(base, robots_needed=["ur5e"], language=language)
    assert (loaded.adapters["ur5e"].image_layers is not None) == image_layers
    assert ("image_layers.convs.0.weight" in loaded.adapters.adapter_state_dict("ur5e")) == image_layers
    update = loaded.adapters["ur5e"].trunk_update
    assert (update.rank if update is not None else 0) == trunk_rank
    assert json.loads((base / "adapters" / "ur5e.json").read_text())["robot"]["trunk_rank"] == trunk_rank
    assert all(torch.equal(v, loaded.adapters.adapter_state_dict("ur5e")[k])
               for k, v in policy.adapters.adapter_state_dict("ur5e").items())
    batch = make_batch()
    assert torch.equal(predict(policy, batch), predict(loaded, batch))
    save_checkpoint(make_policy(seed=1), tmp_path / "other")
    other = load_checkpoint(tmp_path / "other", language=language)
    (tmp_path / "other" / "adapters").mkdir()
    for f in (base / "adapters").iterdir():
        (tmp_path / "other" / "adapters" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(CheckpointMismatch, match="other base weights"):
        load_adapter(other, tmp_path / "other", "ur5e")
