"""`embodied finetune --adapter-only`: a new arm gets a small adapter; the base stays as it was."""

import hashlib
import json
import shutil

import pytest
import torch

from embodied.cli.main import main
from embodied.collect.simgen import SimgenConfig, generate
from embodied.data import EpisodeStore
from embodied.eval import EvalConfig, evaluate
from embodied.eval.evaluate import evaluate_or_read
from embodied.policy import load_checkpoint
from embodied.train import TrainConfig, finetune, train
from embodied.train.config import FINETUNE_TRUNK_RANK


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory, request):
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    root = tmp_path_factory.mktemp("finetune")
    for robot in ("so100", "koch"):
        generate(SimgenConfig(robot, "lift", 2, root / f"{robot}.zarr", workers=2), progress=False)
    train(TrainConfig(out=str(root / "run"), data=(str(root / "so100.zarr"),), preset="tiny", steps=2, batch_size=4,
                      workers=0, language_cache=cache, progress=False))
    return root, cache


def test_adapter_only_finetune(base, capsys):
    root, cache = base
    ckpt = root / "run" / "last"
    before = {name: sha(ckpt / name) for name in ("weights.safetensors", "manifest.json", "norm_stats.json")}
    shared_before = load_checkpoint(ckpt).state_dict()
    assert main(["finetune", "--policy", str(root / "run"), "--robot", "koch", "--data", str(root / "koch.zarr"),
                 "--adapter-only", "--no-image-layers", "--steps", "3", "--batch-size", "4", "--workers", "0",
                 "--cache", cache, "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nadapter: ")[0])
    assert summary["image_layer_parameters"] == 0
    assert summary["trunk_rank"] == FINETUNE_TRUNK_RANK and summary["trunk_update_parameters"] > 0  # the default
    assert {name: sha(ckpt / name) for name in before} == before
    adapter = ckpt / "adapters" / "koch.safetensors"
    assert adapter.is_file() and adapter.stat().st_size < 0.2 * (ckpt / "weights.safetensors").stat().st_size
    assert summary["trainable_parameters"] < 0.2 * summary["parameters"]
    assert (root / "run" / "finetune_koch" / "loss.png").is_file()
    policy = load_checkpoint(ckpt, robots_needed=["so100", "koch"])
    after = policy.state_dict()
    assert all(torch.equal(shared_before[k], after[k]) for k in shared_before)  # base weights untouched
    assert not torch.equal(after["adapters.robots.koch.action_out.weight"],
                           torch.zeros_like(after["adapters.robots.koch.action_out.weight"]))
    report = evaluate(EvalConfig(str(root / "run"), "koch", "lift", episodes=1, workers=1, language_cache=cache,
                                 progress=False))
    assert report["episodes"] == 1 and report["results"][0]["chunks"] > 0


def test_finetune_gives_the_adapter_its_own_image_layers(base, capsys):
    """By default the adapter carries its own copy of the image layers, trained away from the
    shared ones, which stay as they were. --demos 1: it learns from koch's first episode only."""
    root, cache = base
    ckpt = root / "run" / "last"
    shared_before = load_checkpoint(ckpt).image.state_dict()
    assert main(["finetune", "--policy", str(root / "run"), "--robot", "koch", "--data", str(root / "koch.zarr"),
                 "--adapter-only", "--demos", "1", "--steps", "3", "--batch-size", "4", "--workers", "0",
                 "--cache", cache, "--no-progress", "--out", str(root / "finetune_koch_image")]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nadapter: ")[0])
    assert 0 < summary["image_layer_parameters"] < summary["trainable_parameters"]
    assert json.loads((ckpt / "adapters" / "koch.json").read_text())["robot"]["image_layers"] is True
    policy = load_checkpoint(ckpt, robots_needed=["so100", "koch"])
    koch = EpisodeStore.open(root / "koch.zarr")
    assert policy.normalizer.stats["koch"]["state"].count == koch.bounds(0)[1] < koch.num_frames
    own = policy.adapters["koch"].image_layers
    assert own is not None and policy.adapters["so100"].image_layers is None
    assert all(torch.equal(policy.image.state_dict()[k], v) for k, v in shared_before.items())
    assert not torch.equal(own.convs[0].weight, policy.image.blocks[0].conv.weight)


def test_finetune_gives_the_adapter_its_own_trunk_update(base, tmp_path, capsys):
    """--trunk-rank: the adapter carries a low-rank update of the trunk, trained away from zero
    and saved in its file; the base's trunk stays as it was."""
    root, cache = base
    ckpt = tmp_path / "base"
    shutil.copytree(root / "run" / "last", ckpt, ignore=shutil.ignore_patterns("adapters"))
    trunk_before = load_checkpoint(ckpt).trunk.state_dict()
    assert main(["finetune", "--policy", str(ckpt), "--robot", "koch", "--data", str(root / "koch.zarr"),
                 "--adapter-only", "--no-image-layers", "--trunk-rank", "2", "--steps", "3", "--batch-size", "4",
                 "--workers", "0", "--cache", cache, "--no-progress", "--out", str(tmp_path / "ft")]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nadapter: ")[0])
    assert summary["trunk_rank"] == 2 and 0 < summary["trunk_update_parameters"] < summary["trainable_parameters"]
    assert json.loads((ckpt / "adapters" / "koch.json").read_text())["robot"]["trunk_rank"] == 2
    policy = load_checkpoint(ckpt, robots_needed=["so100", "koch"])
    assert all(torch.equal(policy.trunk.state_dict()[k], v) for k, v in trunk_before.items())
    update = policy.adapters["koch"].trunk_update
    assert update.rank == 2 and policy.adapters["so100"].trunk_update is None
    assert any(up.abs().max() > 0 for up in update.up)


def test_full_finetune_is_refused(base, capsys):
    root, cache = base
    assert main(["finetune", "--policy", str(root / "run"), "--robot", "koch", "--data", str(root / "koch.zarr"),
                 "--cache", cache]) == 2
    assert "--adapter-only" in capsys.readouterr().err


def test_finetune_over_a_frozen_backbone_reads_the_new_arms_features_back(base, tmp_path, capsys):
    """A base over the frozen backbone: its finetuning caches the new arm's frame features, so a
    second finetune (another seed or step count) encodes nothing."""
    root, cache = base
    run, features = tmp_path / "bb", tmp_path / "features"
    train(TrainConfig(out=str(run), data=(str(root / "so100.zarr"),), preset="tiny", steps=2, batch_size=4,
                      workers=0, language_cache=cache, feature_cache=str(features), progress=False,
                      policy_overrides={"image_backbone": "efficientnet_lite0", "image_channels": [16]}))
    args = ["finetune", "--policy", str(run), "--robot", "koch", "--data", str(root / "koch.zarr"), "--adapter-only",
            "--batch-size", "4", "--workers", "0", "--cache", cache, "--feature-cache", str(features), "--no-progress"]
    capsys.readouterr()
    summaries = []
    for steps in ("2", "3"):
        assert main([*args, "--steps", steps]) == 0
        summaries.append(json.loads(capsys.readouterr().out.split("\nadapter: ")[0])["backbone_features"])
    assert summaries[0]["batches_read"] == 0 and summaries[0]["batches_encoded"] > 0
    assert (summaries[1]["batches_read"], summaries[1]["batches_encoded"]) == (summaries[0]["batches_encoded"], 0)


def test_a_report_is_kept_for_its_adapter_and_redone_for_a_new_one(base, tmp_path):
    """Evaluation reports are reused only for the same weights: a new finetune of the arm's
    adapter leaves the base's hash as it was, and is evaluated again."""
    root, cache = base
    ckpt = tmp_path / "base"
    shutil.copytree(root / "run" / "last", ckpt, ignore=shutil.ignore_patterns("adapters"))
    cfg = EvalConfig(str(ckpt), "koch", "lift", episodes=1, workers=1, language_cache=cache, progress=False)
    out = tmp_path / "eval" / "koch_lift.json"
    reports = []
    for steps in (1, 2):  # two finetunes of the same arm on the same base
        finetune(ckpt, "koch", TrainConfig(out=str(tmp_path / f"ft{steps}"), data=(str(root / "koch.zarr"),),
                                           steps=steps, batch_size=4, workers=0, language_cache=cache, progress=False))
        reports.append(evaluate_or_read(cfg, out))
        written = out.stat().st_mtime_ns
        assert evaluate_or_read(cfg, out) == reports[-1] and out.stat().st_mtime_ns == written  # read back
    adapter = json.loads((ckpt / "adapters" / "koch.json").read_text())["weights_sha256"]
    assert reports[1]["adapter_sha256"] == adapter != reports[0]["adapter_sha256"]
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    assert json.loads(out.read_text())["adapter_sha256"] == adapter
