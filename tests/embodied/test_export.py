"""`embodied export`: a tiny checkpoint -> ONNX bundle; parity with torch; the int8 gate;
token-level and pooled language."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from embodied.cli.main import main
from embodied.data.transforms import NormStats
from embodied.export import ExportError, export_policy, heldout_inputs
from embodied.export_gate import SimGate
from embodied.export_int8 import DYNAMIC_RECIPES, RECIPES, relative_error, run_all
from embodied.policy import LanguageEncoder, Observation, VLAPolicy, preset, save_checkpoint
from embodied.policy.normalizer import Normalizer
from embodied.runtime import PolicyEngine, load_bundle

INSTRUCTIONS = ["pick up the red cube", "push the blue cube"]  # 7 and 6 tokens: padded to the tiny preset's 8
ROBOTS = ("so100", "panda")


def _stats(dim: int, seed: int) -> dict[str, NormStats]:
    rng = np.random.default_rng(seed)
    mean, std = rng.normal(size=dim).astype(np.float32), rng.uniform(0.5, 2, dim).astype(np.float32)
    return {k: NormStats(mean, std, mean - 2 * std, mean + 2 * std, count=100) for k in ("state", "actions")}


def tiny_policy(language: LanguageEncoder, head: str = "l1", mode: str = "mean_std", **overrides) -> VLAPolicy:
    torch.manual_seed(0)
    normalizer = Normalizer({"so100": _stats(6, 0), "panda": _stats(8, 1)}, mode)
    return VLAPolicy.for_robots(preset("tiny", head=head, **overrides), list(ROBOTS), language, normalizer).eval()


def observations(n: int, seed: int = 0, drop: str | None = None) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [Observation("so100", INSTRUCTIONS[i % 2], rng.normal(size=6).astype(np.float32),
                        {c: rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for c in ("front", "wrist") if c != drop})
            for i in range(n)]


@pytest.fixture(scope="module")
def language(request) -> LanguageEncoder:
    return LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, language):
    """A tiny l1 checkpoint (token-level language) exported through the CLI with --quantize int8."""
    root = tmp_path_factory.mktemp("export")
    policy = tiny_policy(language)
    save_checkpoint(policy, root / "run" / "last")
    rc = main(["export", "--policy", str(root / "run"), "--robot", "so100", "--quantize", "int8",
               "--out", str(root / "bundle"), "--instructions", *INSTRUCTIONS,
               "--cache", str(language.cache_dir)])
    assert rc == 0
    return policy, root / "bundle"


def test_bundle_layout_and_manifest(exported):
    _, bundle = exported
    m = json.loads((bundle / "manifest.json").read_text())
    assert sorted(p.name for p in bundle.iterdir()) == ["language.npy", "language_token_mask.npy",
                                                        "language_tokens.npy", "manifest.json", "policy_fp32.onnx",
                                                        "policy_int8.onnx"]
    assert m["robot"] == "so100" and m["chunk"] == 4 and m["language"]["instructions"] == INSTRUCTIONS
    assert m["inputs"] == ["state", "images", "camera_mask", "language", "language_tokens", "language_token_mask"]
    tokens = m["language"]["tokens"]
    assert tokens["length"] == 8 and [tokens[k]["file"] for k in ("embeddings", "mask")] == [
        "language_tokens.npy", "language_token_mask.npy"]
    assert np.load(bundle / "language_tokens.npy").shape == (2, 8, 384)
    assert np.load(bundle / "language_token_mask.npy").sum(1).tolist() == [7, 6]
    assert [c["name"] for c in m["cameras"]] == ["front", "wrist"] and m["image_shape"] == [96, 96, 3]
    assert m["gate"]["sim_gate"] == "not run" and m["gate"]["passed"] and not m["gate"]["forced"]
    i8 = m["models"]["int8"]
    assert i8["recipe"]["name"] in {r.name for r in RECIPES} and i8["recipe"]["mode"] == "dynamic"
    assert [c["recipe"] for c in i8["candidates"]] == [r.name for r in DYNAMIC_RECIPES]  # no static without data
    assert [c["recipe"] for c in i8["candidates"] if c["chosen"]] == [i8["recipe"]["name"]]
    assert all(c["relative_error"] >= 0 and c["latency_p50_ms"] > 0 for c in i8["candidates"])
    assert i8["calibration"].startswith("none")
    assert m["models"]["int8"]["bytes"] < m["models"]["fp32"]["bytes"]
    assert {"fp32", "int8"} <= set(m["latency_ms"])
    assert load_bundle(bundle, "so100").precisions == ["fp32", "int8"]


def test_fp32_matches_torch_in_robot_units(exported):
    policy, bundle = exported
    engine = PolicyEngine(bundle, precision="fp32", allow_missing_cameras=True)
    for obs in observations(4) + observations(2, seed=1, drop="wrist"):
        want, got = policy.act(obs).actions, engine.infer(obs).actions
        assert got.shape == want.shape == (4, 6)
        assert relative_error(got, want) < 1e-4


def test_relative_actions_get_the_observed_joint_positions_back_in_torch_and_onnx(tmp_path, language):
    absolute, relative = tiny_policy(language), tiny_policy(language, relative_actions=True)  # the same weights
    m = export_policy(relative, "so100", tmp_path / "b", INSTRUCTIONS, heldout=4)
    assert m["normalization"]["relative_actions"] is True
    engine = PolicyEngine(tmp_path / "b", allow_missing_cameras=True)
    for obs in observations(3):
        want = absolute.act(obs).actions.copy()
        want[:, :5] += obs.state[:5]  # five joint targets relative to the state, the gripper (last) absolute
        np.testing.assert_allclose(relative.act(obs).actions, want, rtol=1e-5, atol=1e-5)
        assert relative_error(engine.infer(obs).actions, want) < 1e-4


def test_int8_within_bound_on_new_heldout_inputs(exported):
    _, bundle = exported
    b = load_bundle(bundle)
    m = b.manifest
    assert m["models"]["int8"]["relative_error"] <= m["gate"]["bound"] == 0.05
    feeds = heldout_inputs(12, 6, 6, 2, (96, 96), 4, b.language, flow=False, seed=123)  # not the selection set
    err = relative_error(run_all(b.model_path("int8"), feeds), run_all(b.model_path("fp32"), feeds))
    assert err <= 0.05


def test_int8_past_bound_is_refused_unless_forced(tmp_path, language):
    policy = tiny_policy(language)
    with pytest.raises(ExportError, match=r"past the bound 1e-09; nothing was written.*--force"):
        export_policy(policy, "so100", tmp_path / "b", INSTRUCTIONS[:1], quantize_int8=True, bound=1e-9,
                      recipes=RECIPES[:1], heldout=4)
    assert list(tmp_path.iterdir()) == []  # no bundle, no fp32 model, no temporary folder
    m = export_policy(policy, "so100", tmp_path / "b", INSTRUCTIONS[:1], quantize_int8=True, bound=1e-9, force=True,
                      recipes=RECIPES[:1], heldout=4)
    assert m["gate"]["forced"] and not m["gate"]["passed"]
    assert load_bundle(tmp_path / "b").precisions == ["fp32", "int8"]


def test_flow_head_and_quantile_stats_export(tmp_path, language):
    policy = tiny_policy(language, head="flow", mode="quantile")
    m = export_policy(policy, "panda", tmp_path / "flow", INSTRUCTIONS, heldout=4)
    assert m["inputs"][-1] == "noise" and "int8" not in m["models"]
    assert m["models"]["fp32"]["vs_torch_relative_error"] < 1e-4
    engine = PolicyEngine(tmp_path / "flow", robot="panda")
    assert engine.precision == "fp32"
    obs = Observation("panda", INSTRUCTIONS[0], np.zeros(8, np.float32),
                      {c: np.zeros((96, 96, 3), np.uint8) for c in engine.bundle.cameras})
    first = engine.infer(obs).actions
    engine.reset()
    np.testing.assert_array_equal(engine.infer(obs).actions, first)  # reset restarts the noise
    assert np.isfinite(first).all() and first.shape == (4, 8)


def test_export_refuses_bad_input(tmp_path, language, capsys):
    save_checkpoint(tiny_policy(language), tmp_path / "ckpt")
    assert main(["export", "--policy", str(tmp_path / "ckpt"), "--robot", "koch", "--out", str(tmp_path / "b"),
                 "--instructions", "pick", "--cache", str(language.cache_dir)]) == 2
    assert "koch" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not a bundle.*choose another --out"):
        export_policy(tiny_policy(language), "so100", tmp_path / "notes", INSTRUCTIONS[:1])
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    with pytest.raises(ExportError, match="add --quantize int8"):
        export_policy(tiny_policy(language), "so100", tmp_path / "b", INSTRUCTIONS[:1], gate=SimGate("lift"))


@pytest.mark.parametrize("readout", [{"image_grid": 5}, {"image_keypoints": 6},
                                     {"image_keypoints": 3, "grounding_weight": 1.0, "grounded_state": True},
                                     {"image_backbone": "efficientnet_lite0", "image_channels": (16,)}],
                         ids=["grid5", "keypoints", "grounded_state", "backbone"])
def test_image_readouts_export_exactly(tmp_path, language, readout):
    """96 px -> 12 x 12 features pooled to 5 x 5 (a grid that does not divide the map; the
    `small` preset has 6 -> 4), or read by 6 keypoints, or the frozen EfficientNet-Lite0's
    12 x 12 features under one FiLM layer: the graph matches torch."""
    policy = tiny_policy(language, **readout)
    m = export_policy(policy, "so100", tmp_path / "g5", INSTRUCTIONS[:1], heldout=2)
    engine = PolicyEngine(tmp_path / "g5")
    o = observations(1)[0]
    o = Observation("so100", INSTRUCTIONS[0], o.state, o.images)
    assert m["models"]["fp32"]["vs_torch_relative_error"] < 1e-4
    assert relative_error(engine.infer(o).actions, policy.act(o).actions) < 1e-4


def _perturb_image_layers(adapter):
    with torch.no_grad():
        adapter.image_layers.convs[0].weight.mul_(-1.0)


def _perturb_trunk_update(adapter):
    with torch.no_grad():
        for up in adapter.trunk_update.up:
            up.normal_(0.0, 0.5)  # trained away from zero


@pytest.mark.parametrize("own, perturb", [({"image_layers": True}, _perturb_image_layers),
                                          ({"trunk_rank": 2}, _perturb_trunk_update)])
def test_a_robots_own_layers_export_exactly(tmp_path, language, own, perturb):
    """A robot with its own image layers (`finetune`'s default) or its own low-rank trunk update
    (`--trunk-rank`): the graph computes with them, not with the shared ones. The trunk update
    is merged into the weights: the graph has the shared graph's nodes."""
    policy = tiny_policy(language, image_keypoints=3, grounding_weight=1.0, grounded_state=True)
    o = observations(1)[0]
    shared = policy.act(o).actions
    export_policy(policy, "so100", tmp_path / "shared", INSTRUCTIONS, heldout=2)
    adapter = policy.adapters.adapter_state_dict("so100")
    with_own = policy.add_robot("so100", 6, 6, ["front", "wrist"], **own)
    with_own.load_state_dict(adapter, strict=False)  # the same adapter, plus its own layers
    perturb(with_own)
    policy.eval()
    m = export_policy(policy, "so100", tmp_path / "b", INSTRUCTIONS, heldout=2)
    assert m["models"]["fp32"]["vs_torch_relative_error"] < 1e-4
    served = PolicyEngine(tmp_path / "b").infer(o).actions
    assert relative_error(served, policy.act(o).actions) < 1e-4
    assert relative_error(served, shared) > 1e-3  # 10x the parity bound above
    if "trunk_rank" in own:
        nodes = [sorted(n.op_type for n in onnx.load(str(path / "policy_fp32.onnx")).graph.node)
                 for path in (tmp_path / "shared", tmp_path / "b")]
        assert nodes[0] == nodes[1]


def test_graph_reads_the_token_mask(exported):
    """Padding is masked inside the graph: what lies there does not matter, the mask does."""
    _, bundle = exported
    b = load_bundle(bundle)
    feed = heldout_inputs(1, 6, 6, 2, (96, 96), 4, b.language, flow=False)[0]
    assert not feed["language_token_mask"][0, -1]
    reference = run_all(b.model_path("fp32"), [feed])
    noisy = dict(feed, language_tokens=feed["language_tokens"].copy())
    noisy["language_tokens"][0, -1] = 10.0
    np.testing.assert_allclose(run_all(b.model_path("fp32"), [noisy]), reference, atol=1e-6)
    unmasked = dict(noisy, language_token_mask=np.ones_like(feed["language_token_mask"]))
    assert relative_error(run_all(b.model_path("fp32"), [unmasked]), reference) > 1e-3


def test_trained_token_level_policy_exports_exactly(tmp_path, language):
    policy = tiny_policy(language).train()
    assert policy.config.language_tokens == 8
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    for o in observations(6, seed=2):
        batch = policy.observation_batch(o) | {"actions": torch.randn(1, 4, 6),
                                               "action_valid": torch.ones(1, 4, dtype=torch.bool),
                                               "action_mask": torch.ones(1, 6, dtype=torch.bool)}
        loss = policy(batch)["loss"]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    m = export_policy(policy, "so100", tmp_path / "b", INSTRUCTIONS, heldout=2)
    assert m["models"]["fp32"]["vs_torch_relative_error"] < 1e-4
    engine = PolicyEngine(tmp_path / "b")
    for o in observations(2, seed=3):
        assert relative_error(engine.infer(o).actions, policy.act(o).actions) < 1e-4


def test_pooled_policy_bundle_has_no_token_inputs(tmp_path, language):
    policy = tiny_policy(language, language_tokens=0, film_queries=0)
    m = export_policy(policy, "so100", tmp_path / "b", INSTRUCTIONS, heldout=2)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["language.npy", "manifest.json", "policy_fp32.onnx"]
    assert m["inputs"] == ["state", "images", "camera_mask", "language"] and "tokens" not in m["language"]
    assert m["models"]["fp32"]["vs_torch_relative_error"] < 1e-4
    engine = PolicyEngine(tmp_path / "b")
    for o in observations(2):
        assert relative_error(engine.infer(o).actions, policy.act(o).actions) < 1e-4
