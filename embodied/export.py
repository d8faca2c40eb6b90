"""Export a trained policy for one robot as an ONNX bundle (fp32, optionally int8) (torch side).

    BUNDLE/
      manifest.json        robot, RobotSpec hash, normalization stats, chunk length, camera
                           layout, graph inputs, instructions, model files (sizes, sha256),
                           int8 recipe and its measured error, latency, the accuracy gate
      policy_fp32.onnx     the graph in fp32
      policy_int8.onnx     the graph quantized to int8 (with --quantize int8; recipe chosen by
                           measured error, see `embodied.export_int8`)
      language.npy         float32[I, 384]: sentence embeddings of the exported instructions, in
                           manifest order
      language_tokens.npy  token-level policies only (config.language_tokens = L > 0): float32[I, L, 384]
                           token embeddings of the instructions, zero past their last token
      language_token_mask.npy
                           token-level policies only: bool[I, L], True at the real tokens

Graph (batch of one, fixed image shape from the RobotSpec cameras)::

    state        float32[1, n]        normalized proprioception (the runtime normalizes raw
                                      robot units with the manifest statistics)
    images       uint8[1, K, h, w, 3] the robot's cameras in manifest order (zeros when absent)
    camera_mask  bool[1, K]           True where the camera is present
    language     float32[1, 384]      one row of language.npy (FiLM; the one language token
                                      of pooled policies)
    language_tokens      float32[1, L, 384]  token-level policies only: one row of language_tokens.npy
    language_token_mask  bool[1, L]          token-level policies only: one row of language_token_mask.npy
    noise        float32[1, H, m]     flow head only: the initial noise of the sampler
    -> actions   float32[1, H, m]     normalized actions (the runtime maps them to robot units)

Normalization stays outside the graph so that the bundle's statistics, not constants folded
into weights, are what the deploy path reads (STYLE habit 9), and so that the int8 error is
measured on normalized actions (scale-free across joints).

The int8 model is chosen among ONNX Runtime quantization recipes (`embodied.export_int8`):
dynamic ones always, static ones calibrated on real frames of the robot's dataset when
`--calibration-data` is given. A bundle whose best int8 error exceeds the bound is refused
unless `force`, which the manifest records. With a `SimGate` (`--gate-task`), the finished
bundle's fp32 and int8 models are also run through the same seeded simulated episodes, and
the int8 model is refused when it succeeds more than 3 points less often than fp32
(`embodied.export_gate`); without one the manifest says `"sim_gate": "not run"`.

The bundle is written into a temporary sibling folder and renamed into place only when
complete (gates passed, manifest written). A refused export writes nothing, not even the
fp32 model: a bundle already at `out` may be the one a robot runs, so it stays as it was and
never becomes a mix of two exports (export again without --quantize for an fp32-only bundle).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

import robots
from embodied.errors import CheckpointMismatch, EmbodiedError, InvalidInput
from embodied.export_gate import SimGate, refusal, run_gate
from embodied.export_int8 import (HEADROOM, RECIPES, Calibration, Recipe, candidates, choose, dataset_observations,
                                  engine_feeds, latency_ms, relative_error, run_all)
from embodied.policy.adapters import grounded_keypoints
from embodied.policy.config import PolicyConfig
from embodied.runtime.bundle import (FORMAT, FP32, INT8, LANGUAGE, LANGUAGE_TOKEN_MASK, LANGUAGE_TOKENS, MANIFEST,
                                     Bundle, read_language)

OPSET = 17
DEFAULT_BOUND = 0.05
Feeds = list[dict[str, np.ndarray]]  # graph inputs, one dict per inference


class ExportError(EmbodiedError):
    """An export that cannot be written (e.g. an int8 model past its accuracy bound)."""


class OnnxPolicy(nn.Module):
    """One robot's slice of a VLAPolicy as a traceable module (inputs as in the module docstring).

    Mirrors `VLAPolicy._context` + `head.sample` for a batch of one robot: every camera is
    encoded, absent ones are zeroed and masked out of attention exactly as in torch. A robot
    with its own low-rank trunk update runs a copy of the trunk with the update merged in.
    `forward` takes the graph inputs positionally, in the order of `self.inputs`.
    """

    def __init__(self, policy: nn.Module, robot: str):
        super().__init__()
        self.policy, self.adapter = policy, policy.adapters[robot]
        update = self.adapter.trunk_update
        self.trunk = update.merged(policy.trunk) if update is not None else policy.trunk
        self.flow = policy.config.head == "flow"
        self.inputs = input_names(policy.config)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        p, a, cfg = self.policy, self.adapter, self.policy.config
        x = dict(zip(self.inputs, inputs))
        state, images, camera_mask, language = x["state"], x["images"], x["camera_mask"], x["language"]
        b, k = camera_mask.shape
        g = cfg.image_tokens
        flat = images.flatten(0, 1)  # [B K, h, w, 3]
        tokens, token_mask = x.get("language_tokens"), x.get("language_token_mask")
        film = p.film_part(language, tokens, token_mask)
        lang_rep = film[:, None].expand(-1, k, -1).flatten(0, 1)
        encoded, keypoints = p.image.tokens(p.image.features(flat), lang_rep, a.image_layers)
        encoded = encoded.unflatten(0, (b, k))  # [B, K, G, d]
        present = camera_mask.to(encoded.dtype)[:, :, None, None]
        image_tokens = (encoded + a.camera_embed[None, :, None]) * present
        grounded = (grounded_keypoints(keypoints).unflatten(0, (b, k)) * present[..., 0]
                    if cfg.grounded_state else None)
        state_mask = torch.ones_like(state, dtype=torch.bool)
        language_tokens, language_ignore = p.language_part(language, tokens, token_mask)
        parts = [language_tokens, image_tokens.flatten(1, 2),
                 a.robot_tokens.expand(b, -1, -1), a.state_tokens(state, state_mask, grounded),
                 p.action_queries.expand(b, -1, -1)]
        ignore = [language_ignore, (~camera_mask)[:, :, None].expand(-1, -1, g).flatten(1), None, None, None]
        context = self.trunk(parts, ignore, keep_last=cfg.chunk)
        if not self.flow:
            return p.head.sample(context, a)
        actions, steps = x["noise"], p.head.steps
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((b,), i * dt, dtype=actions.dtype)
            actions = actions + dt * p.head.velocity(actions, t, context, a)
        return actions


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}


def input_names(config: PolicyConfig) -> list[str]:
    """The graph's inputs, in order (see the module docstring)."""
    tokens = ["language_tokens", "language_token_mask"] if config.language_tokens else []
    return ["state", "images", "camera_mask", "language", *tokens] + (["noise"] if config.head == "flow" else [])


def language_inputs(policy: nn.Module, instructions: Sequence[str]) -> dict[str, np.ndarray]:
    """The graph's language inputs for every instruction, row i for `instructions[i]` (as
    `embodied.runtime.bundle.read_language` reads them back)."""
    inputs = {"language": np.asarray(policy.language(instructions), np.float32)}
    if policy.config.language_tokens:
        inputs["language_tokens"], inputs["language_token_mask"] = policy.language.tokens(
            instructions, policy.config.language_tokens)
    return inputs


def heldout_inputs(n: int, state_dim: int, action_dim: int, cameras: int, image_hw: tuple[int, int], chunk: int,
                   language: dict[str, np.ndarray], flow: bool, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`n` synthetic held-out graph inputs: normalized states ~ N(0, 1), smooth random images,
    random camera subsets (at least one present), the exported instructions' `language_inputs`
    in turn."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    out = []
    for i in range(n):
        coarse = rng.uniform(0, 255, (1, cameras, 4, 4, 3))
        images = np.repeat(np.repeat(coarse, -(-h // 4), 2), -(-w // 4), 3)[:, :, :h, :w]
        images = np.clip(images + rng.normal(0, 12, images.shape), 0, 255).astype(np.uint8)
        mask = rng.random((1, cameras)) < 0.8
        mask[0, rng.integers(cameras)] = True
        instruction = i % len(language["language"])
        feed = {"state": rng.standard_normal((1, state_dim)).astype(np.float32), "images": images,
                "camera_mask": mask, **{name: rows[instruction][None] for name, rows in language.items()}}
        if flow:
            feed["noise"] = rng.standard_normal((1, chunk, action_dim)).astype(np.float32)
        out.append(feed)
    return out


def export_onnx(policy: nn.Module, robot: str, path: Path, image_hw: tuple[int, int]) -> Path:
    """Trace robot `robot`'s slice of `policy` to an fp32 ONNX file at `path`."""
    a, cfg = policy.adapters[robot], policy.config
    module = OnnxPolicy(policy, robot).eval()
    k, length, dim = len(a.cameras), cfg.language_tokens, policy.language.dim
    examples = {"state": torch.zeros(1, a.state_dim), "images": torch.zeros(1, k, *image_hw, 3, dtype=torch.uint8),
                "camera_mask": torch.ones(1, k, dtype=torch.bool), "language": torch.zeros(1, dim),
                "language_tokens": torch.zeros(1, length, dim),
                "language_token_mask": torch.ones(1, length, dtype=torch.bool),
                "noise": torch.zeros(1, cfg.chunk, a.action_dim)}
    args = tuple(examples[name] for name in module.inputs)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # shapes are fixed by design (batch of one, the RobotSpec's image size): the tracer's
        # warnings about Python values treated as constants do not apply
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, args, str(tmp), input_names=module.inputs, output_names=["actions"],
                          opset_version=OPSET, dynamo=False)
    os.replace(tmp, path)
    return path


def torch_outputs(policy: nn.Module, robot: str, feeds: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The exported module's outputs in torch, float32[N, H, m] (for parity checks)."""
    module = OnnxPolicy(policy, robot).eval()
    outs = []
    with torch.no_grad():
        for f in feeds:
            outs.append(module(*(torch.from_numpy(f[k]) for k in module.inputs)).numpy())
    return np.concatenate(outs)


def export_bundle(policy_path: str | os.PathLike, robot: str, out: str | os.PathLike, instructions: Sequence[str],
                  quantize_int8: bool = False, bound: float = DEFAULT_BOUND, force: bool = False,
                  heldout: int = 16, threads: int = 1, recipes: Sequence[Recipe] = RECIPES,
                  language: Any = None, seed: int = 0, calibration: Calibration | None = None,
                  gate: SimGate | None = None) -> dict[str, Any]:
    """Write the bundle of `robot` from the checkpoint (or run folder) `policy_path` to `out`.

    Args:
        instructions: the instructions the bundle serves; their embeddings (sentence, and
            tokens for token-level policies) are stored.
        quantize_int8: also write the int8 model, choosing the recipe by measured error.
        bound: largest accepted relative error of int8 vs fp32 (normalized actions).
        force: write an int8 model past `bound` or failing `gate` anyway (recorded in the manifest).
        heldout: synthetic held-out inputs (fp32 vs torch parity; int8 error without calibration).
        threads: intra-op threads of the latency measurements.
        calibration: dataset frames for static int8 recipes (and for measuring every candidate).
        gate: run fp32 and int8 through seeded simulated episodes before writing the bundle.

    Returns:
        The manifest (also written to out/manifest.json).

    Raises:
        ExportError: int8 past the bound or failing the sim gate (nothing written), or `out`
            is a folder that is not a bundle.
    """
    from embodied.policy.checkpoint import load_checkpoint
    from embodied.train.rundir import resolve_policy

    ckpt = resolve_policy(policy_path)
    policy = load_checkpoint(ckpt, robots_needed=[robot], language=language)
    return export_policy(policy, robot, out, instructions, quantize_int8, bound, force, heldout, threads, recipes,
                         seed, source=str(ckpt), calibration=calibration, gate=gate)


def export_policy(policy: nn.Module, robot: str, out: str | os.PathLike, instructions: Sequence[str],
                  quantize_int8: bool = False, bound: float = DEFAULT_BOUND, force: bool = False,
                  heldout: int = 16, threads: int = 1, recipes: Sequence[Recipe] = RECIPES, seed: int = 0,
                  source: str = "", calibration: Calibration | None = None,
                  gate: SimGate | None = None) -> dict[str, Any]:
    """`export_bundle` for a policy already in memory (see there)."""
    if (gate is not None or calibration is not None) and not quantize_int8:
        raise ExportError("--gate-task and --calibration-data concern the int8 model: add --quantize int8")
    wanted = list(instructions) + (gate.instruction_texts(robot) if gate is not None else [])
    instructions = list(dict.fromkeys(policy.language.check(wanted)))
    if not instructions:
        raise InvalidInput("export needs at least one instruction (--instructions \"pick up the red cube\")")
    image_hw = _image_shape(policy, robot)
    out = Path(out)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))  # same filesystem: atomic rename
    try:
        policy.eval()
        manifest, synthetic = _write_fp32(policy, robot, work, instructions, image_hw, heldout, threads, seed, source)
        manifest["gate"] = {"bound": bound, "heldout": heldout, "metric": "||int8 - fp32|| / ||fp32|| over "
                            "normalized action chunks of synthetic held-out inputs", "sim_gate": "not run"}
        if quantize_int8:
            _write_int8(manifest, work, synthetic, recipes, calibration, bound, force, threads)
        _write_manifest(work, manifest)
        if gate is not None:
            result = run_gate(work, robot, gate)
            if not result["passed"] and not force:
                raise ExportError(refusal(result, robot, out))
            manifest["gate"]["sim_gate"] = result | {"forced": not result["passed"]}
            _write_manifest(work, manifest)
        _commit(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _image_shape(policy: nn.Module, robot: str) -> tuple[int, int]:
    """The one (h, w) of the robot's cameras, checked against the policy's camera slots."""
    spec, adapter = robots.load(robot), policy.adapters[robot]
    if [c.name for c in spec.cameras] != adapter.cameras:
        raise CheckpointMismatch(f"{robot}: the policy's cameras {adapter.cameras} differ from the RobotSpec's "
                                 f"{[c.name for c in spec.cameras]}")
    sizes = {(c.height, c.width) for c in spec.cameras}
    if len(sizes) != 1:
        raise ExportError(f"{robot}: cameras of different resolutions {sorted(sizes)}; the bundle needs one image "
                          "shape")
    return next(iter(sizes))


def _check_target(out: Path) -> None:
    """An export replaces a bundle as a whole; refuse to replace anything else."""
    if out.exists() and not (out.is_dir() and ((out / MANIFEST).is_file() or not any(out.iterdir()))):
        raise ExportError(f"{out} exists and is not a bundle (no {MANIFEST}); an export replaces the whole folder: "
                          "remove it or choose another --out")


def _write_fp32(policy: nn.Module, robot: str, work: Path, instructions: list[str], image_hw: tuple[int, int],
                heldout: int, threads: int, seed: int, source: str) -> tuple[dict[str, Any], Feeds]:
    """Language inputs and the fp32 graph into `work`; the manifest so far, and the synthetic
    held-out inputs (parity with torch measured on them)."""
    spec, adapter, cfg = robots.load(robot), policy.adapters[robot], policy.config
    flow = cfg.head == "flow"
    language = language_inputs(policy, instructions)
    files = {"language": LANGUAGE, "language_tokens": LANGUAGE_TOKENS, "language_token_mask": LANGUAGE_TOKEN_MASK}
    for name, rows in language.items():
        with open(work / files[name], "wb") as f:
            np.save(f, rows)
    fp32 = export_onnx(policy, robot, work / FP32, image_hw)
    synthetic = heldout_inputs(heldout, adapter.state_dim, adapter.action_dim, len(adapter.cameras), image_hw,
                               cfg.chunk, language, flow, seed)
    parity = relative_error(run_all(fp32, synthetic), torch_outputs(policy, robot, synthetic))
    stats = policy.normalizer.robot_dict(robot)
    manifest = {
        "format": FORMAT, "robot": robot, "spec_hash": spec.hash, "source": source,
        "policy": {"config": cfg.to_dict(), "head": cfg.head},
        "chunk": cfg.chunk, "state_dim": adapter.state_dim, "action_dim": adapter.action_dim,
        "cameras": [{"name": c.name, "height": c.height, "width": c.width} for c in spec.cameras],
        "image_shape": [*image_hw, 3],
        "inputs": input_names(cfg), "outputs": ["actions"],
        "normalization": {"mode": policy.normalizer.mode, "state": stats["state"], "actions": stats["actions"],
                          "sha256": policy.normalizer.robot_hash(robot), "where": "runtime (numpy), not in the graph",
                          "relative_actions": cfg.relative_actions},
        "language": {"encoder": policy.language.identity, "file": LANGUAGE, "instructions": instructions,
                     "dim": int(language["language"].shape[1])},
        "models": {"fp32": _file_entry(fp32) | {"vs_torch_relative_error": parity}},
        "latency_ms": {"fp32": latency_ms(fp32, synthetic[0], threads)},
    }
    if cfg.language_tokens:
        manifest["language"]["tokens"] = {"length": cfg.language_tokens,
                                          "embeddings": _file_entry(work / LANGUAGE_TOKENS),
                                          "mask": _file_entry(work / LANGUAGE_TOKEN_MASK)}
    return manifest, synthetic


def _write_int8(manifest: dict[str, Any], work: Path, synthetic: Feeds,
                recipes: Sequence[Recipe], calibration: Calibration | None, bound: float, force: bool,
                threads: int) -> None:
    """Try every recipe, keep the chosen one as the int8 model, record all of them in `manifest`.
    With calibration data, static recipes join and every candidate is measured on dataset frames
    held out from calibration, fed through `PolicyEngine.feed` as the robot feeds them."""
    from embodied.runtime import PolicyEngine

    robot, gate = manifest["robot"], manifest["gate"]
    measure, calib = synthetic, None
    if calibration is not None:
        bundle = Bundle(work, manifest, read_language(work, manifest))
        engine = PolicyEngine(bundle, precision="fp32", seed=calibration.seed)
        feeds = engine_feeds(engine, dataset_observations(calibration, robot, bundle.instructions))
        calib, measure = feeds[:calibration.frames], feeds[calibration.frames:]
        gate |= {"heldout": len(measure), "metric": "||int8 - fp32|| / ||fp32|| over normalized action chunks of "
                 f"{len(measure)} frames of {calibration.data} held out from calibration"}
    found = candidates(work / FP32, work, recipes, measure, calib, threads)
    best = choose(found, bound)
    for c in found:
        if c is not best:
            c.path.unlink()
    os.replace(best.path, work / INT8)
    err = best.relative_error
    gate |= {"relative_error": err, "passed": err <= bound, "forced": bool(force and err > bound)}
    if err > bound and not force:
        raise ExportError(f"{robot}: the best int8 recipe ({best.recipe.name}) is {err:.3f} relative error from fp32, "
                          f"past the bound {bound}; nothing was written. Use --force to keep the int8 model anyway "
                          "(recorded in the manifest), try --calibration-data DIR, or export fp32 only")
    fp32_bytes = manifest["models"]["fp32"]["bytes"]
    manifest["models"]["int8"] = _file_entry(work / INT8) | {
        "recipe": best.recipe.to_dict(), "relative_error": err,
        "candidates": [c.to_dict(c is best) for c in found],
        "choice": f"lowest latency among relative error <= {HEADROOM} x bound {bound}; else lowest error",
        "calibration": calibration.to_dict() if calibration else "none (no --calibration-data): dynamic recipes only",
        "size_ratio": fp32_bytes / (work / INT8).stat().st_size}
    manifest["latency_ms"]["int8"] = latency_ms(work / INT8, synthetic[0], threads)


def _write_manifest(work: Path, manifest: dict[str, Any]) -> None:
    tmp = work / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, work / MANIFEST)


def _commit(work: Path, out: Path) -> None:
    """Rename the complete bundle `work` to `out`. A bundle already there is moved aside first and
    removed after, so `out` is only ever absent for an instant, never a mix of two exports."""
    os.chmod(work, 0o755)  # mkdtemp made it private; a bundle is read by the robot's service user too
    previous = work.with_name(work.name + ".previous")
    if out.exists():
        os.replace(out, previous)
    os.replace(work, out)
    shutil.rmtree(previous, ignore_errors=True)
