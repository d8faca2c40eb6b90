"""`embodied eval`: seeded policy rollouts in worker processes, JSON and videos; chunk execution;
the same rollouts through an export bundle (torch-free PolicyEngine)."""

import json

import av
import numpy as np
import pytest

from embodied.cli.main import main
from embodied.collect.simgen import SimgenConfig, generate
from embodied.errors import ConfigError
from embodied.eval import ChunkExecutor, EvalConfig, Execution, evaluate
from embodied.eval.evaluate import episode_instructions
from embodied.eval.policy_rollout import run_policy
from embodied.policy.io import ActionChunk
from embodied.export import export_bundle
from embodied.policy import LanguageEncoder
from embodied.runtime import BundleMismatch
from embodied.train import TrainConfig, train
from sim_scenes.env import TaskEnv


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory, request):
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    root = tmp_path_factory.mktemp("eval")
    generate(SimgenConfig("so100", "lift", 2, root / "so100.zarr", workers=2), progress=False)
    train(TrainConfig(out=str(root / "run"), data=(str(root / "so100.zarr"),), preset="tiny", steps=2, batch_size=4,
                      workers=0, language_cache=cache, progress=False))
    return root, cache


def test_eval_two_workers_json_and_video(policy_run, capsys):
    root, cache = policy_run
    out, videos = root / "eval.json", root / "videos"
    assert main(["eval", "--policy", str(root / "run"), "--robot", "so100", "--task", "lift", "--episodes", "2",
                 "--workers", "2", "--video", str(videos), "--videos", "1", "--execute", "2", "--cache", cache,
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["episodes"] == 2 and 0 <= report["success_rate"] <= 1
    lo, hi = report["ci95"]
    assert 0 <= lo <= report["success_rate"] <= hi <= 1
    assert [r["seed"] for r in report["results"]] == [100_000, 100_001]
    assert all(r["steps"] > 0 and r["chunks"] >= r["steps"] // 2 and r["instruction"] for r in report["results"])
    assert report["execution"] == {"mode": "open_loop", "execute": 2, "k": 0.01}
    assert len(report["videos"]) == 1
    with av.open(report["videos"][0]) as c:
        assert sum(1 for _ in c.decode(video=0)) == report["results"][0]["steps"] + 1
    assert "success" in capsys.readouterr().out


def test_eval_unknown_robot_is_a_clean_error(policy_run, capsys):
    root, cache = policy_run
    assert main(["eval", "--policy", str(root / "run"), "--robot", "koch", "--task", "lift", "--episodes", "1",
                 "--cache", cache]) == 2
    assert "no adapter for ['koch']" in capsys.readouterr().err


def test_eval_through_a_bundle_runs_the_checkpoint_episodes(policy_run, capsys):
    """Same seeds, same instructions, same outcomes: fp32 ONNX Runtime vs the torch checkpoint."""
    root, cache = policy_run
    bundle, out = root / "bundle", root / "bundle_eval.json"
    export_bundle(root / "run", "so100", bundle, episode_instructions("so100", "lift", 100_000, 2),
                  quantize_int8=True, language=LanguageEncoder(cache), heldout=2)
    assert main(["eval", "--bundle", str(bundle), "--precision", "fp32", "--robot", "so100", "--task", "lift",
                 "--episodes", "2", "--workers", "1", "--out", str(out)]) == 0
    assert "onnxruntime fp32" in capsys.readouterr().out
    onnx = json.loads(out.read_text())
    torch_report = evaluate(EvalConfig(str(root / "run"), "so100", "lift", episodes=2, workers=1,
                                       language_cache=cache, progress=False))
    assert (onnx["runtime"], onnx["precision"], torch_report["runtime"]) == ("onnxruntime", "fp32", "torch")
    assert onnx["policy"] == str(bundle) and onnx["episodes"] == 2 and onnx["infer_ms_mean"] > 0
    pick = [(r["seed"], r["instruction"], r["success"], r["steps"]) for r in onnx["results"]]
    assert pick == [(r["seed"], r["instruction"], r["success"], r["steps"]) for r in torch_report["results"]]
    with pytest.raises(BundleMismatch, match=r"holds no embedding for .* export it with these --instructions"):
        evaluate(EvalConfig(str(bundle), "so100", "lift", episodes=6, bundle=True, progress=False))


class _Recorder:
    """A stand-in policy that holds the arm where it is and keeps what it was shown."""

    chunk = 4

    def __init__(self):
        self.seen = []

    def reset(self, seed):
        self.seen.clear()

    def act(self, obs):
        self.seen.append(obs)
        return ActionChunk(np.tile(obs.state, (self.chunk, 1)).astype(np.float32))


def test_camera_jitter_reaches_what_the_policy_sees():
    """Same seed, same scene and instruction; jittered scene cameras show it from elsewhere, the
    wrist camera (on the arm) sees the same."""
    env = TaskEnv("lift", "so100")
    views = []
    for jitter in (0.0, 1.0):
        recorder = _Recorder()
        run_policy(env, recorder, 100_000, Execution(), camera_jitter=jitter)
        views.append(recorder.seen[0])
    env.close()
    nominal, moved = views
    assert nominal.instruction == moved.instruction
    np.testing.assert_array_equal(nominal.state, moved.state)
    np.testing.assert_array_equal(nominal.images["wrist"], moved.images["wrist"])
    assert np.abs(nominal.images["front"].astype(int) - moved.images["front"]).mean() > 5


def test_eval_with_camera_jitter_reports_it(policy_run, capsys):
    root, cache = policy_run
    assert main(["eval", "--policy", str(root / "run"), "--robot", "so100", "--task", "lift", "--episodes", "1",
                 "--workers", "1", "--camera-jitter", "0.5", "--cache", cache]) == 0
    assert "scene cameras jittered 0.5" in capsys.readouterr().out
    report = json.loads((root / "run" / "eval" / "so100_lift_train_camjitter0.5.json").read_text())
    assert report["camera_jitter"] == 0.5 and report["episodes"] == 1
    assert main(["eval", "--policy", str(root / "run"), "--robot", "so100", "--task", "lift", "--episodes", "1",
                 "--camera-jitter", "1.5", "--cache", cache]) == 2
    assert "camera jitter 1.5 is outside [0, 1]" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="drop one of --emulate and --camera-jitter"):
        EvalConfig("bundles/so100", "so100", "lift", bundle=True, emulate=True, camera_jitter=0.5)


def test_open_loop_runs_the_first_actions_of_each_chunk():
    ex = ChunkExecutor(Execution("open_loop", execute=2), horizon=4)
    actions = []
    for t in range(5):
        if ex.needs_chunk():
            ex.push(np.arange(4)[:, None] + 10.0 * t)
        actions.append(float(ex.next()[0]))
    assert actions == [0, 1, 20, 21, 40]


def test_ensemble_averages_overlapping_chunks():
    ex = ChunkExecutor(Execution("ensemble", k=0.0), horizon=3)
    out = []
    for t in range(4):
        assert ex.needs_chunk()
        ex.push(np.full((3, 1), float(t)))
        out.append(float(ex.next()[0]))
    assert out == [0.0, 0.5, 1.0, 2.0]  # the mean of the chunks made at t-2 .. t


def test_eval_through_the_deploy_path_under_faults(policy_run, capsys):
    """--emulate: the same seeded scenes (same instructions) through the deploy loop, with the
    deploy path's faults, limit violations and fault audit in the report."""
    root, cache = policy_run
    bundle, out = root / "bundle_emulate", root / "emulated.json"
    texts = episode_instructions("so100", "lift", 100_000, 2)
    export_bundle(root / "run", "so100", bundle, texts, quantize_int8=True, language=LanguageEncoder(cache), heldout=2)
    assert main(["eval", "--bundle", str(bundle), "--robot", "so100", "--task", "lift", "--episodes", "2",
                 "--emulate", "--fault-profile", "flaky", "--seconds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "emulated deploy path" in printed and "named object manipulated" in printed and "flaky servos" in printed
    report = json.loads(out.read_text())
    assert (report["runtime"], report["precision"], report["episodes"], report["workers"]) == \
        ("onnxruntime", "int8", 2, 1)
    lo, hi = report["ci95"]
    assert 0 <= lo <= report["success_rate"] <= hi <= 1
    assert [(r["seed"], r["instruction"]) for r in report["results"]] == list(zip([100_000, 100_001], texts))
    for r in report["results"]:  # "setup": the emulated servos missed replies before the arm moved (a loaded machine)
        assert (r["stopped"], r["steps"]) in (("time", 30), ("setup", 0)) and r["limit_violations"] == 0
        assert r["target"] == "cube0" and r["named_object"] == (r["manipulated"] == "cube0")
    assert report["named_object_rate"]["episodes"] == 2
    emulated = report["emulated"]
    assert emulated["fault_profile"] == "flaky" and emulated["scheduler"] == "async"
    assert emulated["injected"]["drop"] > 0 and emulated["faults"]["retry"] > 0 and emulated["limit_violations"] == 0
    audit = emulated["fault_audit"]
    judged = audit["by_kind"].get("drop", {}).get("injected", 0)
    assert judged + audit["unmonitored"].get("drop", 0) == emulated["injected"]["drop"]
    assert emulated["period_error_ms"]["p99"] >= 0


def test_emulated_eval_needs_a_bundle():
    with pytest.raises(ConfigError, match="--emulate runs the deploy path"):
        EvalConfig("runs/x", "so100", "lift", emulate=True)
    with pytest.raises(ConfigError, match="add --emulate"):
        EvalConfig("bundles/so100", "so100", "lift", bundle=True, fault_profile="flaky")
