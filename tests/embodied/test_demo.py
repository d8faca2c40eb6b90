"""`embodied demo`: the whole pipeline end to end on tiny settings (real simgen, training,
MuJoCo evaluation, ONNX export through the gates, an emulated deployment under faults), its
report and summary, and a rerun that reuses every finished stage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from embodied.bench.machine import cpu_model
from embodied.cli.main import build_parser, main
from embodied.demo import STAGES, DemoConfig, DemoError, demo_command
from embodied.demo.report import rows
from embodied.demo.ship import _refusals
from embodied.errors import ConfigError

# one robot on `lift` (shorter episodes than the default `push`) keeps the test within a minute
TINY = ["--robots", "so100", "--task", "lift", "--preset", "tiny", "--batch-size", "8", "--demos", "3", "--steps", "20",
        "--eval-episodes", "2", "--gate-episodes", "2", "--deploy-episodes", "1", "--deploy-seconds", "2",
        "--workers", "2", "--no-progress"]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def table_rows(report: str) -> list[list[str]]:
    """The cells of the markdown summary table (the first table of the report)."""
    table = report.split("## Summary", 1)[1].strip().split("\n\n", 1)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]


def test_demo_end_to_end_then_rerun_reuses_every_stage(tmp_path, request, capsys):
    out = tmp_path / "demo"
    args = ["demo", *TINY, "--out", str(out), "--cache", str(request.config.cache.mkdir("minilm_embeddings"))]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert all(f"[{i}/6]" in printed for i in range(1, 7)) and "emulated flaky success" in printed

    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["robots"]) == ["so100"] and summary["reused"] == []
    r = summary["robots"]["so100"]
    assert r["data"]["episodes"] == 3 and Path(r["data"]["path"]) == out / "data" / "so100_lift.zarr"
    assert summary["train"]["steps"] == 20 and (out / "loss.png").stat().st_size > 1000
    assert r["eval"]["episodes"] == 2 and 0 <= r["eval"]["ci95"][0] <= r["eval"]["success_rate"] <= r["eval"]["ci95"][1]
    assert Path(r["eval"]["video"]).stat().st_size > 1000
    x = r["export"]
    assert x["precision"] == ("int8" if x["int8_passed"] else "fp32") and x["gate_episodes"] == 2
    manifest = json.loads((out / "bundles" / "so100" / "manifest.json").read_text())
    assert manifest["models"][x["precision"]]["sha256"] == x["model_sha256"]
    assert not [p for p in (out / "bundles").iterdir() if p.name.startswith(".")]  # no candidate left behind
    d = r["deploy"]
    assert d["refused"] == "" and d["episodes"] == 1 and d["fault_profile"] == "flaky" and d["scheduler"] == "async"
    assert d["limit_violations"] == 0 and Path(d["blackbox"]).is_file()
    # "setup": the emulated servos missed replies before the arm moved (a loaded machine; see test_eval_policy)
    assert (d["stopped"] == "setup") == (d["period_error_p99_ms"] is None), d

    report = (out / "report.md").read_text()
    (row,) = table_rows(report)
    assert row == rows(summary)[0]  # the report is written from summary.json
    assert summary["machine"]["cpu"] == cpu_model() and f"cores, {cpu_model()}" in report
    assert row[0] == "so100" and row[1].startswith("3 ") and row[2] == "20"
    assert f"{100 * r['eval']['success_rate']:.1f}%" in row[3] and f"({r['eval']['successes']}/2)" in row[3]
    assert row[6] == f"{d['successes']}/1" and row[8] == str(d["limit_violations"])
    p99 = d["period_error_p99_ms"]
    assert row[9] == ("-" if p99 is None else f"{p99:.1f}") and row[7].startswith(str(sum(d["faults"].values())))
    video = os.path.relpath(r["eval"]["video"], out)
    assert f"]({video})" in report and (out / video).is_file() and "![loss curve](loss.png)" in report
    assert "embodied simgen --robot so100 --task lift --episodes 3" in report and "--gate-task lift" in report

    before = mtimes(out / "data") | mtimes(out / "run") | mtimes(out / "bundles") | mtimes(out / "eval") \
        | mtimes(out / "deploy")
    assert main(args) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["reused"] == ["data", "train", "eval", "export", "deploy"]
    for stage in ("eval", "export", "deploy"):  # the same results, read back from the stage records
        assert again["robots"]["so100"][stage] == r[stage] | {"skipped": True}
    assert again["train"] == summary["train"] | {"skipped": True}
    assert again["robots"]["so100"]["data"]["generated"] == 0
    after = mtimes(out / "data") | mtimes(out / "run") | mtimes(out / "bundles") | mtimes(out / "eval") \
        | mtimes(out / "deploy")
    assert after == before  # nothing regenerated, retrained, re-evaluated, re-exported or redeployed


def test_config_is_checked_and_the_resume_command_round_trips():
    with pytest.raises(ConfigError, match="demos"):
        DemoConfig(demos=0)
    with pytest.raises(ConfigError, match="each once"):
        DemoConfig(robots=("so100", "so100"))
    cfg = DemoConfig(robots=("koch",), steps=7, deploy_seconds=2.5, out="x/y", language_cache="c", progress=False)
    command = demo_command(cfg)
    assert command == ("embodied demo --robots koch --steps 7 --deploy-seconds 2.5 --out x/y --cache c "
                       "--no-progress")
    args = build_parser().parse_args(command.split()[1:])
    assert args.robots == ["koch"] and args.steps == 7 and args.deploy_seconds == 2.5 and not args.progress
    assert demo_command(DemoConfig()) == "embodied demo"


def test_stage_errors_name_the_stage_and_how_to_resume():
    e = DemoError("export", "no checkpoint", "embodied demo --out x")
    assert str(e).startswith(f"stage 4/{len(STAGES)} (export) failed: no checkpoint")
    assert "run `embodied demo --out x` again" in str(e)


def test_a_failing_stage_is_named_with_the_command_that_resumes(tmp_path, capsys):
    (tmp_path / "d" / "data" / "so100_lift.zarr").mkdir(parents=True)  # a folder that is not an episode store
    assert main(["demo", "--robots", "so100", "--task", "lift", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "stage 1/6 (data) failed: CorruptStore" in err
    assert f"run `embodied demo --robots so100 --task lift --out {tmp_path / 'd'}` again" in err


def test_unknown_robot_fails_before_any_work(tmp_path, capsys):
    assert main(["demo", "--robots", "so101", "--out", str(tmp_path / "d")]) == 2
    assert "so100" in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_gate_refusals_are_explained():
    gate = {"passed": True, "relative_error": 0.01, "bound": 0.05,
            "sim_gate": {"passed": True, "drop_points": 0.0, "max_drop_points": 3.0}}
    assert _refusals(gate) == []
    gate = {"passed": False, "relative_error": 0.08, "bound": 0.05,
            "sim_gate": {"passed": False, "drop_points": 20.0, "max_drop_points": 3.0}}
    assert _refusals(gate) == ["int8 error 0.080 > bound 0.05",
                               "int8 20.0 points below fp32 in simulation (bar 3)"]
