"""The positive-transfer protocol: pooled and per-robot runs on the same demonstrations,
evaluated pair by pair; resumable."""

import json
from dataclasses import replace

import pytest

from embodied.collect.simgen import SimgenConfig, generate
from embodied.data import EpisodeStore
from embodied.errors import ConfigError, DataError
from embodied.eval.transfer import TransferConfig, combine_reports, main, run_transfer


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    for robot in ("so100", "koch"):
        generate(SimgenConfig(robot, "lift", 2, root / f"{robot}_lift.zarr", workers=2), progress=False)
    return root, (str(root / "so100_lift.zarr"), str(root / "koch_lift.zarr"))


def test_pooled_against_specialists_per_pair_and_resumed(stores, request, capsys):
    root, data = stores
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    cfg = TransferConfig(data, str(root / "out"), demos=1, seeds=(0,), steps=2, preset="tiny", episodes=1, workers=1,
                         language_cache=cache, train_overrides={"batch_size": 4, "workers": 0, "warmup": 0})
    report = run_transfer(cfg)
    runs = {p.name for p in (root / "out" / "seed0").iterdir()}
    assert runs == {"pooled", "so100", "koch"}
    pooled = json.loads((root / "out" / "seed0" / "pooled" / "train_config.json").read_text())
    alone = json.loads((root / "out" / "seed0" / "koch" / "train_config.json").read_text())
    assert pooled["robots"] == ["so100", "koch"] and alone["robots"] == ["koch"]
    assert pooled["steps"] == alone["steps"] == 2 and pooled["demos"] == alone["demos"] == 1
    assert [(p["robot"], p["task"]) for p in report["pairs"]] == [("so100", "lift"), ("koch", "lift")]
    assert all(p["pooled"]["episodes"] == p["specialist"]["episodes"] == 1 for p in report["pairs"])
    wins = sum(p["pooled"]["successes"] for p in report["pairs"])
    alone_wins = sum(p["specialist"]["successes"] for p in report["pairs"])
    assert report["gain"] == pytest.approx((wins - alone_wins) / 2)
    lo, hi = report["gain_ci95"]
    assert lo <= report["gain"] <= hi and report["per_seed"][0]["gain"] == report["gain"]
    assert json.loads((root / "out" / "transfer.json").read_text())["gain"] == report["gain"]
    said = capsys.readouterr().err
    assert said.count("transfer: training") == 3  # the pooled run and two specialists, as each starts
    koch = report["pairs"][1]
    assert (f"seed 0 koch/lift: pooled {koch['pooled']['successes']}/1, "
            f"specialist {koch['specialist']['successes']}/1") in said
    weights = root / "out" / "seed0" / "pooled" / "last" / "weights.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert run_transfer(cfg)["pairs"] == report["pairs"]  # found done: nothing retrained
    assert capsys.readouterr().err.count("already trained to 2 steps") == 3
    assert weights.stat().st_mtime_ns == stamp
    longer = replace(cfg, steps=3)  # trained on, and evaluated again
    run_transfer(longer)
    assert weights.stat().st_mtime_ns != stamp
    evaluated = json.loads((root / "out" / "seed0" / "koch" / "eval" / "koch_lift_transfer.json").read_text())
    assert evaluated["trained_steps"] == 3


def test_a_dataset_without_its_task_is_a_clear_error(stores, tmp_path):
    root, data = stores
    old = tmp_path / "old.zarr"
    store = EpisodeStore.create(old, "koch", 30.0, 6, 6, {"top": (8, 8)})
    with pytest.raises(DataError, match="does not say which simulated task.*set_attr"):
        run_transfer(TransferConfig((data[0], str(old)), str(tmp_path / "out")))
    assert store.num_episodes == 0


def test_the_command_line_trains_every_run_with_the_recipe_given(stores, request, tmp_path, capsys):
    _, data = stores
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    out = tmp_path / "out"
    assert main(["--data", *data, "--demos", "1", "--seeds", "0", "--steps", "1", "--preset", "tiny", "--episodes", "1",
                 "--workers", "1", "--cache", cache, "--lr", "5e-4", "--set", "chunk=4", "--out", str(out)]) == 0
    for run in ("pooled", "so100", "koch"):
        trained = json.loads((out / "seed0" / run / "train_config.json").read_text())
        assert trained["lr"] == 5e-4 and trained["policy_overrides"] == {"chunk": 4}
        assert json.loads((out / "seed0" / run / "last" / "config.json").read_text())["chunk"] == 4
    assert json.loads(capsys.readouterr().out)["pooled"]["episodes"] == 2


def test_seeds_run_apart_combine_into_the_protocols_report(stores, request, tmp_path, capsys):
    _, data = stores
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    common = ["--data", *data, "--demos", "1", "--steps", "1", "--preset", "tiny", "--episodes", "1",
              "--workers", "1", "--cache", cache, "--feature-cache"]
    for seed in (0, 1):  # each seed on its own "machine": its own feature cache and output folder
        assert main([*common, str(tmp_path / f"features{seed}"), "--seeds", str(seed),
                     "--out", str(tmp_path / f"seed{seed}")]) == 0
    apart = [json.loads((tmp_path / f"seed{seed}" / "transfer.json").read_text()) for seed in (0, 1)]
    capsys.readouterr()
    assert main(["--combine", *(str(tmp_path / f"seed{seed}" / "transfer.json") for seed in (0, 1)),
                 "--out", str(tmp_path / "all")]) == 0
    combined = json.loads((tmp_path / "all" / "transfer.json").read_text())
    assert combined["pairs"] == apart[0]["pairs"] + apart[1]["pairs"]
    assert combined["config"]["seeds"] == [0, 1] and combined["config"]["out"] == str(tmp_path / "all")
    assert [s["gain"] for s in combined["per_seed"]] == [apart[0]["gain"], apart[1]["gain"]]
    wins = sum(p["pooled"]["successes"] - p["specialist"]["successes"] for p in combined["pairs"])
    assert combined["gain"] == pytest.approx(wins / 4) and combined["pooled"]["episodes"] == 4
    koch = [p for p in combined["pairs"] if p["robot"] == "koch"]
    assert combined["per_robot"]["koch"]["gain"] == pytest.approx(
        sum(p["pooled"]["successes"] - p["specialist"]["successes"] for p in koch) / 2)
    assert list(combined["per_task"]) == ["lift"] and combined["per_task"]["lift"]["gain"] == combined["gain"]
    assert json.loads(capsys.readouterr().out)["gain"] == combined["gain"]

    with pytest.raises(ConfigError, match="a seed appears in two reports"):
        combine_reports([apart[0], combined])
    longer = apart[1] | {"config": apart[1]["config"] | {"steps": 2}}
    with pytest.raises(ConfigError, match="report 1 is not the same protocol.*its steps differ"):
        combine_reports([apart[0], longer])
    with pytest.raises(ConfigError, match="its pairs differ"):
        combine_reports([apart[0], apart[1] | {"pairs": apart[1]["pairs"][:1]}])
    (tmp_path / "torn.json").write_text('{"config": {')
    with pytest.raises(DataError, match="torn.json is not JSON"):
        main(["--combine", str(tmp_path / "torn.json"), "--out", str(tmp_path / "x")])
    with pytest.raises(DataError, match="gone.json does not exist"):
        main(["--combine", str(tmp_path / "gone.json"), "--out", str(tmp_path / "x")])
