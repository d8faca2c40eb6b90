"""Emulated deployment: the deploy loop against an emulated so100 chain on a pty whose plant
is the MuJoCo lift scene, with that scene's rendered cameras (real MuJoCo, real ONNX
Runtime, real wire protocol), clean and with the flaky fault profile; the CLI; and the
import boundary (the whole path runs without torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from embodied.data.store import EpisodeStore
from embodied.deploy import DeployConfig
from embodied.deploy.emulated import run_emulated_episodes
from firmware_bridge.link import Timing
from firmware_bridge.monitor import read_blackbox

INSTRUCTION = "pick up the red cube"
TIMING = Timing(margin=0.02)


def test_emulated_episode_runs_records_and_logs(bundle, tmp_path):
    config = DeployConfig(str(bundle), INSTRUCTION, seconds=1.0, record=str(tmp_path / "deploy.zarr"),
                          blackbox=str(tmp_path / "bb.jsonl"))
    [result] = run_emulated_episodes(bundle, "lift", [3], config=config, timing=TIMING)
    assert result.stopped == "time" and result.steps == 30 and result.success is False  # untrained: no lift
    assert result.limit_violations == 0 and "position_limit" not in result.faults
    assert len(result.inference_ms) >= 2 and len(result.period_error_ms) == 29
    log = read_blackbox(tmp_path / "bb.jsonl")
    assert log[0]["task"] == "lift" and log[0]["fault_profile"] == "none"
    notes = [(e["kind"], e["what"]) for e in log if e["kind"] in ("deploy", "controller")]
    # TIMING's 20 ms reply margin leaves a 30 Hz step no time to ask a lost reply again: it says so
    assert notes == [("deploy", "episode start"), ("controller", "start"), ("controller", "read budget short"),
                     ("controller", "shutdown"), ("controller", "at rest"), ("deploy", "episode end")]

    store = EpisodeStore.open(tmp_path / "deploy.zarr")
    ep = store.episode(0)
    assert store.num_episodes == 1 and ep.source == "deploy" and ep.task == INSTRUCTION and ep.seed == 3
    n = len(ep.state)  # one frame per tick that read a state: on a loaded machine a read may time out ...
    assert n == 30 or (n >= 1 and result.faults.get("bus_timeout", 0) >= 1)  # ... and the monitor raises it
    assert ep.state.shape == ep.action.shape == (n, 6) and ep.images["front"].shape == (n, 96, 96, 3)
    assert np.isfinite(ep.action).all() and np.all(np.diff(ep.timestamp) > 0)
    assert ep.images["wrist"].std() > 0  # rendered, not blank


def test_flaky_profile_from_the_cli(bundle, tmp_path, capsys):
    from embodied.cli.main import main

    out = tmp_path / "summary.json"
    code = main(["deploy", "--bundle", str(bundle), "--emulate", "--task", "lift", "--fault-profile", "flaky",
                 "--instruction", INSTRUCTION, "--seconds", "1.5", "--scheduler", "ensemble",
                 "--blackbox", str(tmp_path / "bb.jsonl"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "episode 0 (seed 0): time after 45 ticks" in printed and "period error [ms]" in printed
    summary = json.loads(out.read_text())
    assert summary["injected"].get("drop", 0) > 0 and summary["faults"]["retry"] > 0  # lost replies, asked again
    assert summary["limit_violations"] == 0 and "position_limit" not in summary["faults"]
    assert summary["scheduler"] == "ensemble" and summary["precision"] == "int8"
    assert summary["period_error_ms"]["max"] >= summary["period_error_ms"]["p50"] and summary["peak_rss_mb"] > 0
    retries = [e for e in read_blackbox(tmp_path / "bb.jsonl") if e["kind"] == "retry"]
    assert len(retries) == summary["faults"]["retry"]


def test_deploy_path_never_imports_torch(bundle, tmp_path):
    code = f"""
import sys
from embodied.deploy import DeployConfig
from embodied.deploy.emulated import run_emulated_episodes
from firmware_bridge.link import Timing
config = DeployConfig({str(bundle)!r}, {INSTRUCTION!r}, seconds=0.3, blackbox={str(tmp_path / 'bb.jsonl')!r})
[result] = run_emulated_episodes({str(bundle)!r}, "lift", [0], config=config, timing=Timing(margin=0.02))
assert result.steps == 9 and result.limit_violations == 0, result
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
assert not heavy, heavy
print("ok")
"""
    env = {**os.environ, "MUJOCO_GL": "egl"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("faults, detail", [
    ("[[disconnect]]\nstart = 0.0\nend = 600.0\n", "did not answer"),  # silent from the first physics step
    ("[packets]\ndrop = 0.0\nlatency = 0.0\ncorrupt = 1.0\n", "checksum"),  # every reply garbled
])
def test_servos_unanswered_before_the_arm_moved_fail_the_episode_not_the_run(bundle, tmp_path, faults, detail):
    """A bus whose replies never come through intact: each episode ends as "setup", logged,
    and the next one still runs."""
    profile = tmp_path / "dead.toml"
    profile.write_text('name = "dead"\n' + faults)
    config = DeployConfig(str(bundle), INSTRUCTION, seconds=0.3, blackbox=str(tmp_path / "bb.jsonl"))
    results = run_emulated_episodes(bundle, "lift", [0, 1], str(profile), config=config, timing=TIMING)
    assert [(r.seed, r.stopped, r.success, r.steps) for r in results] == [(0, "setup", False, 0), (1, "setup", False, 0)]
    assert all(detail in r.detail and r.target == "cube0" and r.manipulated is None for r in results), results
    setup = [e for e in read_blackbox(tmp_path / "bb.jsonl") if e["kind"] == "setup"]
    assert [e["what"] for e in setup] == ["failed", "failed"]
