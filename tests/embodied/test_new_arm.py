"""The new-arm protocol: adapters on a base that held the arm out, against training from
scratch, along a curve of demonstration counts and against a reference; resumable."""

import json
from dataclasses import replace

import pytest

from embodied.collect.simgen import SimgenConfig, generate
from embodied.errors import ConfigError, DataError
from embodied.eval import new_arm
from embodied.eval.new_arm import NewArmConfig, main, run_new_arm
from embodied.train import TrainConfig, train


@pytest.fixture(scope="module")
def setup(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("new_arm")
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    for robot in ("so100", "koch"):
        generate(SimgenConfig(robot, "lift", 2, root / f"{robot}_lift.zarr", workers=2), progress=False)
    train(TrainConfig(out=str(root / "base"), data=(str(root / "so100_lift.zarr"),), preset="tiny", steps=2,
                      batch_size=4, workers=0, warmup=0, language_cache=cache, progress=False))
    return root, cache


def test_the_curve_against_scratch_and_the_reference_stopped_and_resumed(setup, capsys, monkeypatch):
    root, cache = setup
    cfg = NewArmConfig(str(root / "base"), "koch", "lift", (str(root / "koch_lift.zarr"),), str(root / "out"),
                       demos=(2, 1), reference_demos=2, steps=2, reference_steps=3, episodes=1, workers=1,
                       language_cache=cache, train_overrides={"batch_size": 4, "workers": 0, "warmup": 0})
    out = root / "out"
    real_adapter = new_arm._adapter

    def stopped_at_one(cfg, run, base, demos, seed, preset):
        if demos == 1:
            raise KeyboardInterrupt  # the protocol is stopped after its first count
        return real_adapter(cfg, run, base, demos, seed, preset)

    monkeypatch.setattr(new_arm, "_adapter", stopped_at_one)
    with pytest.raises(KeyboardInterrupt):
        run_new_arm(cfg)
    partial = json.loads((out / "new_arm.json").read_text())
    assert not partial["complete"] and [row["demos"] for row in partial["curve"]] == [2]
    monkeypatch.setattr(new_arm, "_adapter", real_adapter)
    report = run_new_arm(cfg)
    assert report["complete"]
    assert report["config"]["preset"] == "tiny"  # the base's
    for n in (1, 2):
        adapter = out / f"adapter_{n}_seed0" / "base"
        assert (adapter / "adapters" / "koch.safetensors").is_file()
        scratch = json.loads((out / f"scratch_{n}_seed0" / "train_config.json").read_text())
        assert scratch["robots"] == ["koch"] and scratch["demos"] == n and scratch["steps"] == 2
    assert not (root / "base" / "last" / "adapters").exists()  # the base itself stays as it was
    reference = json.loads((out / "reference" / "train_config.json").read_text())
    assert (reference["demos"], reference["steps"]) == (2, 3)
    assert [row["demos"] for row in report["curve"]] == [1, 2]  # increasing, whatever the order run
    assert report["curve"][1] == partial["curve"][0]  # the stopped run's count, found done
    for row in report["curve"]:
        n = row["demos"]
        evaluated = json.loads((out / f"adapter_{n}_seed0" / "base" / "eval" / "koch_lift_new_arm.json").read_text())
        assert row["adapter"]["successes"] == evaluated["successes"] and row["adapter"]["episodes"] == 1
        assert evaluated["adapter_sha256"] is not None
        lo, hi = row["scratch"]["ci95"]
        assert lo <= row["scratch"]["rate"] <= hi
        ref = report["reference"]["rate"]
        assert row["adapter_share_of_reference"] == (row["adapter"]["rate"] / ref if ref else None)
    assert json.loads((out / "new_arm.json").read_text())["curve"] == report["curve"]
    said = capsys.readouterr().err
    assert said.count("new arm: finetuning") == 2 and said.count("from scratch (") == 3
    assert said.count("already finetuned") == 1 and said.count("already trained") == 2  # on resuming

    adapter = out / "adapter_2_seed0" / "base" / "adapters" / "koch.safetensors"
    stamp = adapter.stat().st_mtime_ns
    assert run_new_arm(cfg)["curve"] == report["curve"]  # found done: nothing trained or evaluated again
    said = capsys.readouterr().err
    assert said.count("already finetuned") == 2 and said.count("already trained") == 3
    assert adapter.stat().st_mtime_ns == stamp

    run_new_arm(replace(cfg, demos=(2,), adapter_lr=5e-4))  # another adapter learning rate: finetuned again
    said = capsys.readouterr().err
    assert ("finetuning " + str(out / "adapter_2_seed0") +
            " (2 demonstrations, 2 steps at a learning rate of 0.0005, trunk rank 16)") in said
    assert said.count("already trained") == 2  # the reference and the run from scratch keep theirs
    assert json.loads((out / "adapter_2_seed0" / "finetune.json").read_text())["lr"] == 5e-4
    assert adapter.stat().st_mtime_ns != stamp

    run_new_arm(replace(cfg, demos=(2,), adapter_lr=5e-4, trunk_rank=2))  # another trunk rank: finetuned again
    said = capsys.readouterr().err
    assert "trunk rank 2)" in said and said.count("already trained") == 2
    finished = json.loads((out / "adapter_2_seed0" / "finetune.json").read_text())
    assert finished["trunk_rank"] == 2 and finished["trunk_update_parameters"] > 0


def test_a_base_that_knows_the_arm_or_too_few_demonstrations_is_refused(setup, tmp_path):
    root, cache = setup
    knows = NewArmConfig(str(root / "base"), "so100", "lift", (str(root / "so100_lift.zarr"),), str(tmp_path / "a"),
                         demos=(1,), reference_demos=2)
    with pytest.raises(ConfigError, match="was trained on so100.*train one without so100"):
        run_new_arm(knows)
    with pytest.raises(DataError, match="holds 2 committed episodes, 200 were asked for"):
        main(["--base", str(root / "base"), "--robot", "koch", "--task", "lift", "--data",
              str(root / "koch_lift.zarr"), "--out", str(tmp_path / "b")])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any run
