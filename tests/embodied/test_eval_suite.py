"""`embodied eval --suite`: every pair a run was trained on, evaluated and summed; reports
reused only for the same weights and episodes."""

import json

import pytest

from embodied.cli.main import main
from embodied.collect.simgen import SimgenConfig, generate
from embodied.errors import ConfigError
from embodied.eval.stats import describe_target_color, difference_interval
from embodied.eval.suite import SuiteConfig, format_summary, run_suite, summarize
from embodied.train import TrainConfig, train


@pytest.fixture(scope="module")
def run(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("suite")
    data = []
    for robot in ("so100", "koch"):
        data.append(str(root / f"{robot}_lift.zarr"))
        generate(SimgenConfig(robot, "lift", 1, data[-1], workers=1), progress=False)
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    train(TrainConfig(out=str(root / "run"), data=tuple(data), preset="tiny", steps=2, batch_size=4, workers=0,
                      warmup=0, preload=True, language_cache=cache, progress=False))
    return root / "run", cache


def test_the_run_records_its_pairs_and_the_suite_sums_them(run):
    path, cache = run
    assert json.loads((path / "train_config.json").read_text())["pairs"] == [["so100", "lift"], ["koch", "lift"]]
    cfg = SuiteConfig(str(path), ("train", "heldout"), episodes=2, workers=1, language_cache=cache, progress=False)
    summary = run_suite(cfg)
    assert [(r["robot"], r["instructions"]) for r in summary["pairs"]] == [
        ("so100", "train"), ("koch", "train"), ("so100", "heldout"), ("koch", "heldout")]
    for instructions in ("train", "heldout"):
        reports = [json.loads((path / "eval" / f"{robot}_lift_{instructions}.json").read_text())
                   for robot in ("so100", "koch")]
        assert all(r["weights_sha256"] == summary["weights_sha256"] and r["episodes"] == 2 for r in reports)
        total = summary["totals"][instructions]
        assert total["successes"] == sum(r["successes"] for r in reports) and total["episodes"] == 4
        assert total["named_object"]["manipulated"] == sum(r["named_object_rate"]["manipulated"] for r in reports)
    t, h = summary["totals"]["train"], summary["totals"]["heldout"]
    drop = summary["heldout_minus_train"]
    assert drop["difference"] == pytest.approx((h["successes"] - t["successes"]) / 4)
    assert drop["ci95"] == pytest.approx(list(difference_interval(h["successes"], 4, t["successes"], 4)))
    assert json.loads((path / "eval" / "suite_train_heldout.json").read_text())["totals"] == summary["totals"]
    table = format_summary(summary)
    assert "| lift, held-out phrasings |" in table and f"train phrasings: {t['successes']}/4" in table


def test_totals_lowest_pair_named_object_and_heldout_drop():
    def row(robot, task, instructions, wins, named, moved):
        return {"robot": robot, "task": task, "instructions": instructions, "successes": wins, "episodes": 50,
                "named": named, "manipulated": moved}

    rows = [row("so100", "lift", "train", 45, 46, 47), row("koch", "push", "train", 20, 30, 40),
            row("so100", "lift", "heldout", 35, 40, 40), row("koch", "push", "heldout", 10, 20, 30)]
    summary = summarize(rows)
    train, heldout = summary["totals"]["train"], summary["totals"]["heldout"]
    assert (train["successes"], train["episodes"], train["rate"]) == (65, 100, 0.65)
    assert train["lowest"] == {"robot": "koch", "task": "push", "successes": 20, "episodes": 50}
    assert train["named_object"]["named"] == 76 and train["named_object"]["of_manipulated"] == pytest.approx(76 / 87)
    assert heldout["successes"] == 45
    assert summary["heldout_minus_train"]["difference"] == pytest.approx(-0.2)
    lo, hi = summary["heldout_minus_train"]["ci95"]
    assert lo < -0.2 < hi < 0
    assert "heldout_minus_train" not in summarize(rows[:2])
    assert train["by_target_color"] is None  # rows of reports without the split


def test_the_colour_split_sums_over_pairs_and_needs_every_pair():
    def row(robot, shared, distinct):
        return {"robot": robot, "task": "place", "instructions": "train", "successes": shared[0] + distinct[0],
                "episodes": 50, "named": 0, "manipulated": 0,
                "by_target_color": {"shared": dict(zip(("successes", "episodes"), shared)),
                                    "distinct": dict(zip(("successes", "episodes"), distinct))}}

    rows = [row("so100", (2, 14), (8, 36)), row("koch", (0, 10), (13, 40))]
    total = summarize(rows)["totals"]["train"]
    assert total["by_target_color"] == {"shared": {"successes": 2, "episodes": 24},
                                        "distinct": {"successes": 21, "episodes": 76}}
    assert "shared with another prop (a bin or zone): 2/24 succeeded; not shared: 21/76" in format_summary(
        {"pairs": rows, **summarize(rows)})
    rows[1]["by_target_color"] = None  # a reused report from before the split: no partial sum
    assert summarize(rows)["totals"]["train"]["by_target_color"] is None
    lift = {"shared": {"successes": 0, "episodes": 0}, "distinct": {"successes": 40, "episodes": 50}}
    assert describe_target_color(lift) is None and describe_target_color(None) is None  # nothing to split


def test_reports_are_reused_only_for_the_same_weights_and_episodes(run):
    path, cache = run
    cfg = SuiteConfig(str(path), episodes=2, workers=1, language_cache=cache, progress=False)
    run_suite(cfg)
    koch = path / "eval" / "koch_lift_train.json"
    stamp = koch.stat().st_mtime_ns
    run_suite(cfg)
    assert koch.stat().st_mtime_ns == stamp  # same weights and episodes: read, not run again
    stale = json.loads(koch.read_text()) | {"weights_sha256": "another checkpoint", "successes": 99}
    koch.write_text(json.dumps(stale))
    summary = run_suite(cfg)
    assert json.loads(koch.read_text())["weights_sha256"] == summary["weights_sha256"]
    assert summary["totals"]["train"]["successes"] <= 4
    koch.write_text(koch.read_text()[:40])  # cut short by a killed suite
    run_suite(cfg)
    assert json.loads(koch.read_text())["weights_sha256"] == summary["weights_sha256"]
    only = run_suite(SuiteConfig(str(path), robots=("koch",), episodes=3, workers=1, language_cache=cache,
                                 progress=False))
    assert [r["robot"] for r in only["pairs"]] == ["koch"] and json.loads(koch.read_text())["episodes"] == 3


def test_a_run_without_pairs_or_a_filter_matching_none_is_a_clear_error(run, tmp_path):
    path, cache = run
    with pytest.raises(ConfigError, match=r"trained on \[\('so100', 'lift'\), \('koch', 'lift'\)\]"):
        run_suite(SuiteConfig(str(path), tasks=("push",), language_cache=cache, progress=False))
    old = tmp_path / "old"
    (old / "last").mkdir(parents=True)
    for f in (path / "last").iterdir():
        (old / "last" / f.name).write_bytes(f.read_bytes())
    config = json.loads((path / "train_config.json").read_text())
    del config["pairs"]
    (old / "train_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="no record of the robots and tasks.*--robot R --task T"):
        run_suite(SuiteConfig(str(old), language_cache=cache, progress=False))


def test_the_cli_prints_the_table_and_refuses_single_pair_flags(run, capsys):
    path, cache = run
    assert main(["eval", "--policy", str(path), "--suite", "--task", "lift", "--episodes", "2", "--workers", "1",
                 "--cache", cache]) == 0
    out = capsys.readouterr().out
    assert "| | so100 | koch | all |" in out and "saved " + str(path / "eval" / "suite_train_lift.json") in out
    assert main(["eval", "--policy", str(path), "--suite", "--video", str(path / "v"), "--cache", cache]) == 2
    assert "drop --video" in capsys.readouterr().err
    assert main(["eval", "--policy", str(path), "--robot", "so100", "koch", "--task", "lift", "--cache", cache]) == 2
    assert "--robot: give exactly one" in capsys.readouterr().err
