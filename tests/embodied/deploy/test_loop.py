"""The deploy loop on an emulated so100 bus (real pty, real wire protocol, real ONNX Runtime):
refusals before the arm moves, a camera that freezes mid-run, a policy that returns NaN."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from embodied.deploy import DeployConfig, PreflightRefused, deploy
from embodied.policy.io import ActionChunk
from firmware_bridge.monitor import read_blackbox

INSTRUCTION = "pick up the red cube"


def config(bundle, tmp_path, **kw) -> DeployConfig:
    return DeployConfig(str(bundle), kw.pop("instruction", INSTRUCTION), blackbox=str(tmp_path / "bb.jsonl"), **kw)


def events(tmp_path, kind: str | None = None) -> list[dict]:
    return [e for e in read_blackbox(tmp_path / "bb.jsonl") if kind is None or e["kind"] == kind]


def assert_untouched(arm) -> None:
    """No goal position was written and torque is off on every emulated servo."""
    assert arm.goals() == [1] * len(arm.chain.servos)
    assert not any(arm.torque())


def corrupt_onnx(bundle, tmp_path):
    path = shutil.copytree(bundle, tmp_path / "corrupt")
    onnx = path / "policy_int8.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case, check, match", [
    ("instruction", "instruction", r"'stack the cubes' was not exported.*Fix: use one of those"),
    ("missing camera", "cameras", r"\['wrist'\] not connected.*--camera NAME=SOURCE"),
    ("corrupt onnx", "bundle", r"policy_int8.onnx does not match its recorded sha256"),
    ("dead camera", "frames", r"camera 'wrist': the device returned no frame"),
])
def test_refused_before_the_arm_moves(case, check, match, bundle, so100, cameras, make_camera, tmp_path):
    kw = {"instruction": "stack the cubes"} if case == "instruction" else {}
    path = corrupt_onnx(bundle, tmp_path) if case == "corrupt onnx" else bundle
    if case == "missing camera":
        del cameras["wrist"]
    if case == "dead camera":
        cameras["wrist"] = make_camera("wrist", fail_after=0)
    with pytest.raises(PreflightRefused, match=match) as refused:
        deploy(config(path, tmp_path, **kw), so100.robot, so100.bus, cameras)
    assert refused.value.check == check
    assert_untouched(so100)
    assert events(tmp_path, "preflight")[0]["what"] == "refused"
    assert not events(tmp_path, "controller")  # never started


def test_bundle_of_another_robot_is_refused(bundle, koch, cameras, tmp_path):
    with pytest.raises(PreflightRefused, match=r"exported for robot 'so100', this arm is 'koch'.*--robot koch"):
        deploy(config(bundle, tmp_path), koch.robot, koch.bus, cameras)
    assert_untouched(koch)


@pytest.mark.parametrize("flags, message", [
    ([], "refused before the arm moved (cameras)"),
    (["--camera", "front=0", "--camera", "wrist=1"], "pip install opencv-python-headless"),
])
def test_cli_on_a_serial_port_refuses_before_the_arm_moves(flags, message, bundle, so100, tmp_path, capsys):
    from embodied.cli.main import main

    if flags:
        if importlib.util.find_spec("cv2") is not None:
            pytest.skip("OpenCV is installed: the cameras would open")
    so100.bus.disconnect()  # the command opens the port itself
    code = main(["deploy", "--bundle", str(bundle), "--port", so100.chain.port, "--instruction", INSTRUCTION,
                 "--blackbox", str(tmp_path / "bb.jsonl"), "--json", str(tmp_path / "summary.json"), *flags])
    assert code == 2 and message in capsys.readouterr().err
    assert_untouched(so100)


def test_frozen_camera_mid_run_stops_safely(bundle, so100, cameras, make_camera, tmp_path):
    cameras["front"] = make_camera("front", freeze_after=12)
    summary = deploy(config(bundle, tmp_path, seconds=3.0, freeze_frames=4, episodes=2), so100.robot, so100.bus,
                     cameras)
    assert summary["stopped"] == "camera" and summary["episodes"] == 1  # a blind policy ends the run
    assert "froze" in summary["per_episode"][0]["detail"] and 10 <= summary["steps"] <= 16
    raised = [e for e in events(tmp_path, "camera") if e["what"] == "raised"]
    assert raised and raised[0]["reaction"] == "slow_stop" and "front" in raised[0]["detail"]
    notes = [e["what"] for e in events(tmp_path, "controller")]
    assert notes[-2:] == ["shutdown", "at rest"]
    safe = np.array(so100.robot.home)
    np.testing.assert_allclose(so100.positions()[:5], safe, atol=0.02)  # brought to the safe pose
    assert summary["limit_violations"] == 0 and all(so100.torque())  # so100 falls when limp: torque stays on


class NaNAfter:
    """A PolicyEngine whose chunks turn NaN after `calls` inferences (a graph gone bad)."""

    def __init__(self, engine, calls: int):
        self.engine, self.calls, self.n = engine, calls, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def infer(self, obs):
        self.n += 1
        chunk = self.engine.infer(obs)
        return ActionChunk(np.full_like(chunk.actions, np.nan)) if self.n > self.calls else chunk


def test_nan_action_holds_then_slow_stops(bundle, so100, cameras, tmp_path):
    from embodied.runtime import PolicyEngine

    engine = NaNAfter(PolicyEngine(bundle, robot="so100"), calls=4)
    summary = deploy(config(bundle, tmp_path, seconds=1.0, scheduler="sync"), so100.robot, so100.bus, cameras,
                     engine=engine)
    nan = [e for e in events(tmp_path, "nan_action")]
    assert nan[0]["what"] == "raised" and nan[0]["reaction"] == "hold"
    assert any(e["what"] == "escalated" and e["reaction"] == "slow_stop" for e in nan)
    assert summary["reactions"]["hold"] >= 1 and summary["reactions"]["slow_stop"] >= 1
    assert summary["faults"]["nan_action"] == 1 and summary["limit_violations"] == 0
    lo = np.array([j.range[0] for j in so100.robot.joints])
    hi = np.array([j.range[1] for j in so100.robot.joints])
    q = so100.positions()[:5]
    assert np.isfinite(q).all() and np.all((q >= lo) & (q <= hi))


def test_config_is_validated():
    from embodied.deploy import DeployError

    with pytest.raises(DeployError, match=r"unknown scheduler 'fast'; use one of \['async', 'ensemble', 'sync'\]"):
        DeployConfig("b", scheduler="fast")
    with pytest.raises(DeployError, match="unknown precision 'int4'"):
        DeployConfig("b", precision="int4")
    with pytest.raises(DeployError, match="seconds, jump"):
        DeployConfig("b", seconds=0)
