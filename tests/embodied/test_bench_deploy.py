"""`embodied bench deploy` (inference part): runs end to end on a tiny checkpoint; no timed
assertions (benchmarks are commands, their numbers are not test outcomes)."""

from __future__ import annotations

import json

import numpy as np
import torch

from embodied.bench import deploy
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
                 "--threads", "1", "--cache", cache, "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.rsplit("saved", 1)[0]) == summary  # printed and saved
    assert set(summary["inference_ms"]) == set(deploy.RUNTIMES)
    assert all(t["calls"] == 3 and 0 < t["p50"] <= t["p90"] <= t["p99"] for t in summary["inference_ms"].values())
    assert set(summary["ratios"]) == set(summary["meets_targets"]) - {"int8_p50_ms"}
    assert set(summary["meets_targets"]) == set(deploy.TARGETS)
    assert summary["bundle"]["bytes"]["int8"] < summary["bundle"]["bytes"]["fp32"]
    assert summary["deploy_loop"]["status"].startswith("not measured")


def test_bench_deploy_needs_the_policy_to_deploy(capsys):
    assert main(["bench", "deploy"]) == 2
    assert "--policy runs/X --robot R" in capsys.readouterr().err
