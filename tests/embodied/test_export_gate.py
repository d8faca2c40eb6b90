"""embodied.export_gate: the simulated-success gate of int8 exports (real MuJoCo episodes,
real ONNX Runtime), refusal that leaves a previous bundle intact, --force recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.cli.main import main
from embodied.export import ExportError, export_policy
from embodied.export_gate import SimGate
from embodied.export_int8 import DYNAMIC_RECIPES
from embodied.policy import save_checkpoint
from embodied.runtime import load_bundle

INSTRUCTION = "pick up the red cube"
RECIPE = DYNAMIC_RECIPES[:1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_gate_writes_nothing_and_keeps_the_previous_bundle(tmp_path, policy):
    out = tmp_path / "so100"
    export_policy(policy, "so100", out, [INSTRUCTION], heldout=2)  # a previous, fp32-only bundle
    before = snapshot(out)
    impossible = SimGate("lift", episodes=1, workers=1, max_drop_points=-1.0, progress=False)  # int8 must win
    with pytest.raises(ExportError, match=r"int8 succeeds in 0/1 \(0.0%\) of the lift episodes \(seeds "
                                          r"100000..100000\), fp32 in 0/1 \(0.0%\).*past the -1-point bar.*--force"):
        export_policy(policy, "so100", out, [INSTRUCTION], quantize_int8=True, heldout=2, recipes=RECIPE,
                      gate=impossible)
    assert snapshot(out) == before and load_bundle(out).precisions == ["fp32"]
    assert [p.name for p in tmp_path.iterdir()] == ["so100"]  # no temporary folder left behind


def test_forced_gate_records_the_drop(tmp_path, policy):
    gate = SimGate("lift", episodes=1, seed0=7, workers=1, max_drop_points=-1.0, progress=False)
    m = export_policy(policy, "so100", tmp_path / "b", [INSTRUCTION], quantize_int8=True, heldout=2, recipes=RECIPE,
                      gate=gate, force=True)
    sim = m["gate"]["sim_gate"]
    assert sim["forced"] and not sim["passed"] and sim["drop_points"] == 0.0 and sim["max_drop_points"] == -1.0
    assert sim["task"] == "lift" and sim["episodes"] == 1 and sim["seeds"] == {"first": 7, "last": 7}
    assert sim["fp32"]["successes"] == sim["int8"]["successes"] == 0
    on_disk = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert on_disk["gate"]["sim_gate"] == sim and load_bundle(tmp_path / "b").precisions == ["fp32", "int8"]
    assert len(m["language"]["instructions"]) >= 1 and m["language"]["instructions"][0] == INSTRUCTION


def test_cli_gate_passes_and_exports_the_gate_instructions(tmp_path, policy, capsys):
    save_checkpoint(policy, tmp_path / "ckpt")
    assert main(["export", "--policy", str(tmp_path / "ckpt"), "--robot", "so100", "--out", str(tmp_path / "b"),
                 "--quantize", "int8", "--gate-task", "lift", "--gate-episodes", "1", "--gate-seeds-start", "3",
                 "--workers", "1", "--cache", str(policy.language.cache_dir)]) == 0
    m = load_bundle(tmp_path / "b").manifest
    sim = m["gate"]["sim_gate"]
    assert sim["passed"] and not sim["forced"] and sim["seeds"] == {"first": 3, "last": 3}
    assert len(m["language"]["instructions"]) == 1  # no --instructions: the gate episode's own
    assert "simulated-success gate, lift x 1 seeds" in capsys.readouterr().out
