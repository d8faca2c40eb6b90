"""`embodied bench deploy`: runs end to end on a tiny checkpoint, inference and deploy loop
(one short episode per fault profile); no timed assertions (benchmarks are commands, their
numbers are not test outcomes)."""

from __future__ import annotations

import json

import numpy as np
import torch

from embodied.bench import deploy, deploy_loop
from embodied.cli.main import main
from embodied.data.transforms import NormStats
from embodied.policy import LanguageEncoder, VLAPolicy, preset, save_checkpoint
from embodied.policy.normalizer import Normalizer


def test_bench_deploy_reports_every_runtime_and_target(tmp_path, request, capsys):
    torch.manual_seed(0)
    stats = {k: NormStats(np.zeros(6, np.float32), np.ones(6, np.float32), -np.ones(6, np.float32),
                          np.ones(6, np.float32), 10) for k in ("state", "actions")}
    cache = str(request.config.cache.mkdir("minilm_embeddings"))
    policy = VLAPolicy.for_robots(preset("tiny"), ["so100"], LanguageEncoder(cache), Normalizer({"so100": stats}))
    save_checkpoint(policy, tmp_path / "ckpt")
    out = tmp_path / "deploy.json"
    assert main(["bench", "deploy", "--policy", str(tmp_path / "ckpt"), "--robot", "so100", "--calls", "3",
                 "--threads", "1", "--rounds", "2", "--cache", cache, "--out", str(out), "--deploy-episodes", "1",
                 "--deploy-seconds", "1"]) == 0
    summary = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.rsplit("saved", 1)[0]) == summary  # printed and saved
    assert set(summary["inference_ms"]) == set(deploy.RUNTIMES)
    for t in summary["inference_ms"].values():
        assert t["calls"] == 3 and 0 < t["p50"] <= t["p90"] <= t["p99"]
        assert len(t["rounds_p50"]) == 2 and min(t["rounds_p50"]) <= t["p50"] <= max(t["rounds_p50"])
    assert set(summary["ratios"]) == set(summary["meets_targets"]) - {"int8_p50_ms"}
    assert set(summary["meets_targets"]) == set(deploy.TARGETS)
    assert summary["bundle"]["bytes"]["int8"] < summary["bundle"]["bytes"]["fp32"]
    _check_deploy_loop(summary["deploy_loop"], tmp_path)


def _check_deploy_loop(loop: dict, folder) -> None:
    """The section is there, with numbers and a flag per target."""
    assert set(loop["meets_targets"]) == set(loop["measured"]) == set(deploy_loop.TARGETS)
    assert all(flag in (True, False, None) for flag in loop["meets_targets"].values())
    assert loop["meets_targets"]["torch_free"] and loop["meets_targets"]["limit_violations"]
    clean, faulty = loop["runs"]["fault_free"], loop["runs"]["faulty"]
    assert 0 < loop["measured"]["peak_rss_mb"] and (loop["measured"]["loop_period_p99_ms"] or 0) >= 0
    assert (clean["fault_profile"], faulty["fault_profile"]) == ("none", "flaky")
    for run in (clean, faulty):
        assert run["episodes"] == 1 and 0 <= run["success_rate"] <= 1
        assert (run["per_episode"][0]["stopped"], run["steps"]) in (("time", 30), ("setup", 0))  # see test_eval_policy
        assert run["per_episode"][0]["seed"] == deploy_loop.SEED0 and run["limit_violations"] == 0
        assert (folder / f"deploy_loop-{'fault_free' if run is clean else 'faulty'}.jsonl").exists()
    assert clean["injected"] == {} and isinstance(faulty["fault_audit"]["every_fault_in_blackbox"], bool)
    if faulty["steps"]:
        audit = faulty["fault_audit"]
        assert faulty["injected"].get("drop", 0) > 0  # 5 % of ~200 replies lost
        judged = audit["by_kind"].get("drop", {}).get("injected", 0)
        assert judged + audit["unmonitored"].get("drop", 0) == faulty["injected"]["drop"]  # each one accounted for


def test_bench_deploy_needs_the_policy_to_deploy(capsys):
    assert main(["bench", "deploy"]) == 2
    assert "--policy runs/X --robot R" in capsys.readouterr().err
