"""Export a trained policy for one robot as an ONNX bundle (fp32, optionally int8) (torch side).

    BUNDLE/
      manifest.json        robot, RobotSpec hash, normalization stats, chunk length, camera
                           layout, graph inputs, instructions, model files (sizes, sha256),
                           int8 recipe and its measured error, latency, the accuracy gate
      policy_fp32.onnx     the graph in fp32
      policy_int8.onnx     the graph with dynamically quantized MatMul/Gemm (with --quantize int8)
      language.npy         float32[I, L]: embeddings of the exported instructions, in manifest order

Graph (batch of one, fixed image shape from the RobotSpec cameras)::

    state        float32[1, n]        normalized proprioception (the runtime normalizes raw
                                      robot units with the manifest statistics)
    images       uint8[1, K, h, w, 3] the robot's cameras in manifest order (zeros when absent)
    camera_mask  bool[1, K]           True where the camera is present
    language     float32[1, L]        one row of language.npy
    noise        float32[1, H, m]     flow head only: the initial noise of the sampler
    -> actions   float32[1, H, m]     normalized actions (the runtime maps them to robot units)

Normalization stays outside the graph so that the bundle's statistics, not constants folded
into weights, are what the deploy path reads (STYLE habit 9), and so that the int8 error is
measured on normalized actions (scale-free across joints).

The int8 model is chosen among a few ONNX Runtime dynamic-quantization recipes by its
relative error against fp32 on held-out inputs: on AVX2-only CPUs signed int8 without
`reduce_range` can saturate. A bundle whose best int8 error exceeds the bound is refused
unless `force`, which the manifest records. The simulated-success gate is not run here
(`"sim_gate": "not run"`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

import robots
from embodied.errors import CheckpointMismatch, EmbodiedError, InvalidInput
from embodied.runtime.bundle import FORMAT, FP32, INT8, LANGUAGE, MANIFEST

OPSET = 17
DEFAULT_BOUND = 0.05


class ExportError(EmbodiedError):
    """An export that cannot be written (e.g. an int8 model past its accuracy bound)."""


@dataclass(frozen=True)
class Recipe:
    """One ONNX Runtime dynamic-quantization recipe (see `onnxruntime.quantization.quantize_dynamic`)."""

    name: str
    weight_type: str = "QInt8"  # "QInt8" or "QUInt8"
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Gemm")
    per_channel: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight_type": self.weight_type, "reduce_range": self.reduce_range,
                "op_types": list(self.op_types), "per_channel": self.per_channel}


RECIPES: tuple[Recipe, ...] = (
    Recipe("s8_reduce_range", "QInt8", reduce_range=True),
    Recipe("u8_weights", "QUInt8"),
    Recipe("s8_per_channel_reduce_range", "QInt8", reduce_range=True, per_channel=True),
    Recipe("s8_default", "QInt8"),
)


class OnnxPolicy(nn.Module):
    """One robot's slice of a VLAPolicy as a traceable module (inputs as in the module docstring).

    Mirrors `VLAPolicy._context` + `head.sample` for a batch of one robot: every camera is
    encoded, absent ones are zeroed and masked out of attention exactly as in torch.
    """

    def __init__(self, policy: nn.Module, robot: str):
        super().__init__()
        self.policy, self.adapter = policy, policy.adapters[robot]
        self.flow = policy.config.head == "flow"

    def _encode_images(self, images: torch.Tensor, lang: torch.Tensor) -> torch.Tensor:
        """`ImageEncoder.forward` with its adaptive pooling as a fixed matmul: uint8[N, h, w, 3],
        float32[N, L] -> float32[N, G, d]."""
        enc = self.policy.image
        x = images.permute(0, 3, 1, 2).float() * (1.0 / 63.75) - 2.0
        for block in enc.blocks:
            x = block(x, lang)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        pool = _adaptive_pool_matrix(h, w, self.policy.config.image_grid).to(x.dtype)
        x = x.flatten(2) @ pool.T  # [N, C, G]
        return enc.proj(x.transpose(1, 2)) + enc.position

    def forward(self, state: torch.Tensor, images: torch.Tensor, camera_mask: torch.Tensor,
                language: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        p, a, cfg = self.policy, self.adapter, self.policy.config
        b, k = camera_mask.shape
        g = cfg.image_grid**2
        flat = images.flatten(0, 1)  # [B K, h, w, 3]
        lang_rep = language[:, None].expand(-1, k, -1).flatten(0, 1)
        encoded = self._encode_images(flat, lang_rep).unflatten(0, (b, k))  # [B, K, G, d]
        present = camera_mask.to(encoded.dtype)[:, :, None, None]
        image_tokens = (encoded + a.camera_embed[None, :, None]) * present
        state_mask = torch.ones_like(state, dtype=torch.bool)
        parts = [p.lang_proj(language)[:, None], image_tokens.flatten(1, 2),
                 a.robot_tokens.expand(b, -1, -1), a.state_tokens(state, state_mask),
                 p.action_queries.expand(b, -1, -1)]
        ignore = [None, (~camera_mask)[:, :, None].expand(-1, -1, g).flatten(1), None, None, None]
        context = p.trunk(parts, ignore)[:, -cfg.chunk:]
        if not self.flow:
            return p.head.sample(context, a)
        x, steps = noise, p.head.steps
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((b,), i * dt, dtype=x.dtype)
            x = x + dt * p.head.velocity(x, t, context, a)
        return x


def _adaptive_pool_matrix(h: int, w: int, grid: int) -> torch.Tensor:
    """float32[grid * grid, h * w]: `nn.AdaptiveAvgPool2d(grid)` on an h x w map as one matmul
    (the ONNX exporter only handles output sizes that divide the input size)."""
    def bins(n: int) -> torch.Tensor:
        m = torch.zeros(grid, n)
        for i in range(grid):
            lo, hi = (i * n) // grid, -(-((i + 1) * n) // grid)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m

    return torch.einsum("ai,bj->abij", bins(h), bins(w)).reshape(grid * grid, h * w)


@contextlib.contextmanager
def _no_fastpath() -> Iterator[None]:
    """The fused TransformerEncoder fast path does not export; turn it off while tracing."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}


def input_names(flow: bool) -> list[str]:
    return ["state", "images", "camera_mask", "language"] + (["noise"] if flow else [])


def heldout_inputs(n: int, state_dim: int, action_dim: int, cameras: int, image_hw: tuple[int, int], chunk: int,
                   embeddings: np.ndarray, flow: bool, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`n` synthetic held-out graph inputs: normalized states ~ N(0, 1), smooth random images,
    random camera subsets (at least one present), the exported instructions in turn."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    out = []
    for i in range(n):
        coarse = rng.uniform(0, 255, (1, cameras, 4, 4, 3))
        images = np.repeat(np.repeat(coarse, -(-h // 4), 2), -(-w // 4), 3)[:, :, :h, :w]
        images = np.clip(images + rng.normal(0, 12, images.shape), 0, 255).astype(np.uint8)
        mask = rng.random((1, cameras)) < 0.8
        mask[0, rng.integers(cameras)] = True
        feed = {"state": rng.standard_normal((1, state_dim)).astype(np.float32), "images": images,
                "camera_mask": mask, "language": embeddings[i % len(embeddings)][None].astype(np.float32)}
        if flow:
            feed["noise"] = rng.standard_normal((1, chunk, action_dim)).astype(np.float32)
        out.append(feed)
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b|| over all entries (b the reference)."""
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-12))


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run_all(path: Path, feeds: Sequence[dict[str, np.ndarray]], threads: int = 1) -> np.ndarray:
    sess = _session(path, threads)
    return np.concatenate([sess.run(None, f)[0] for f in feeds])


def latency_ms(path: Path, feed: dict[str, np.ndarray], threads: int = 1, runs: int = 20) -> dict[str, float]:
    """p50/p90 latency [ms] of one inference (after 3 warm-up runs) in this process."""
    sess = _session(path, threads)
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(1e3 * (time.perf_counter() - t0))
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)), "runs": runs,
            "threads": threads}


def export_onnx(policy: nn.Module, robot: str, path: Path, image_hw: tuple[int, int]) -> Path:
    """Trace robot `robot`'s slice of `policy` to an fp32 ONNX file at `path`."""
    a, cfg = policy.adapters[robot], policy.config
    flow = cfg.head == "flow"
    module = OnnxPolicy(policy, robot).eval()
    k = len(a.cameras)
    args = (torch.zeros(1, a.state_dim), torch.zeros(1, k, *image_hw, 3, dtype=torch.uint8),
            torch.ones(1, k, dtype=torch.bool), torch.zeros(1, policy.language.dim))
    if flow:
        args = args + (torch.zeros(1, cfg.chunk, a.action_dim),)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad(), _no_fastpath(), warnings.catch_warnings():
        # shapes are fixed by design (batch of one, the RobotSpec's image size): the tracer's
        # warnings about Python values treated as constants do not apply
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, args, str(tmp), input_names=input_names(flow), output_names=["actions"],
                          opset_version=OPSET, dynamo=False)
    os.replace(tmp, path)
    return path


def quantize(fp32: Path, out: Path, recipe: Recipe) -> Path:
    """Dynamic int8 quantization of `fp32` into `out` with `recipe`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_suffix(".tmp")
    quantize_dynamic(str(fp32), str(tmp), weight_type=getattr(QuantType, recipe.weight_type),
                     reduce_range=recipe.reduce_range, op_types_to_quantize=list(recipe.op_types),
                     per_channel=recipe.per_channel)
    os.replace(tmp, out)
    return out


def torch_outputs(policy: nn.Module, robot: str, feeds: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The exported module's outputs in torch, float32[N, H, m] (for parity checks)."""
    module = OnnxPolicy(policy, robot).eval()
    outs = []
    with torch.no_grad():
        for f in feeds:
            outs.append(module(*(torch.from_numpy(f[k]) for k in input_names(module.flow))).numpy())
    return np.concatenate(outs)


def export_bundle(policy_path: str | os.PathLike, robot: str, out: str | os.PathLike, instructions: Sequence[str],
                  quantize_int8: bool = False, bound: float = DEFAULT_BOUND, force: bool = False,
                  heldout: int = 16, threads: int = 1, recipes: Sequence[Recipe] = RECIPES,
                  language: Any = None, seed: int = 0) -> dict[str, Any]:
    """Write the bundle of `robot` from the checkpoint (or run folder) `policy_path` to `out`.

    Args:
        instructions: the instructions the bundle serves; their embeddings are stored.
        quantize_int8: also write the int8 model, choosing the recipe with the lowest error.
        bound: largest accepted relative error of int8 vs fp32 (normalized actions).
        force: write an int8 model past `bound` anyway (recorded in the manifest).
        heldout: synthetic held-out inputs for the error measurement.
        threads: intra-op threads of the latency measurement.

    Returns:
        The manifest (also written to out/manifest.json, last).
    """
    from embodied.policy.checkpoint import load_checkpoint
    from embodied.train.rundir import resolve_policy

    ckpt = resolve_policy(policy_path)
    policy = load_checkpoint(ckpt, robots_needed=[robot], language=language)
    return export_policy(policy, robot, out, instructions, quantize_int8, bound, force, heldout, threads, recipes,
                         seed, source=str(ckpt))


def export_policy(policy: nn.Module, robot: str, out: str | os.PathLike, instructions: Sequence[str],
                  quantize_int8: bool = False, bound: float = DEFAULT_BOUND, force: bool = False,
                  heldout: int = 16, threads: int = 1, recipes: Sequence[Recipe] = RECIPES, seed: int = 0,
                  source: str = "") -> dict[str, Any]:
    """`export_bundle` for a policy already in memory (see there)."""
    instructions = list(dict.fromkeys(policy.language.check(list(instructions))))
    if not instructions:
        raise InvalidInput("export needs at least one instruction (--instructions \"pick up the red cube\")")
    spec = robots.load(robot)
    adapter = policy.adapters[robot]
    if [c.name for c in spec.cameras] != adapter.cameras:
        raise CheckpointMismatch(f"{robot}: the policy's cameras {adapter.cameras} differ from the RobotSpec's "
                                 f"{[c.name for c in spec.cameras]}")
    sizes = {(c.height, c.width) for c in spec.cameras}
    if len(sizes) != 1:
        raise ExportError(f"{robot}: cameras of different resolutions {sorted(sizes)}; the bundle needs one image shape")
    image_hw = next(iter(sizes))
    cfg, flow = policy.config, policy.config.head == "flow"
    policy.eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # the manifest is written last: no manifest, no bundle
    embeddings = np.asarray(policy.language(instructions), np.float32)
    tmp = out / (LANGUAGE + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, embeddings)
    os.replace(tmp, out / LANGUAGE)

    fp32 = export_onnx(policy, robot, out / FP32, image_hw)
    feeds = heldout_inputs(heldout, adapter.state_dim, adapter.action_dim, len(adapter.cameras), image_hw,
                           cfg.chunk, embeddings, flow, seed)
    ref = torch_outputs(policy, robot, feeds)
    y32 = _run_all(fp32, feeds)
    models: dict[str, Any] = {"fp32": _file_entry(fp32) | {"vs_torch_relative_error": relative_error(y32, ref)}}
    latency = {"fp32": latency_ms(fp32, feeds[0], threads)}
    gate: dict[str, Any] = {"bound": bound, "heldout": heldout, "metric": "||int8 - fp32|| / ||fp32|| over "
                            "normalized action chunks of synthetic held-out inputs", "sim_gate": "not run"}
    (out / INT8).unlink(missing_ok=True)
    if quantize_int8:
        trials = []
        for recipe in recipes:
            path = quantize(fp32, out / f"policy_int8.{recipe.name}.onnx", recipe)
            trials.append((relative_error(_run_all(path, feeds), y32), recipe, path))
        trials.sort(key=lambda t: t[0])
        err, best, path = trials[0]
        for _, _, p in trials[1:]:
            p.unlink()
        os.replace(path, out / INT8)
        gate |= {"relative_error": err, "passed": err <= bound, "forced": bool(force and err > bound)}
        if err > bound and not force:
            (out / INT8).unlink()
            raise ExportError(f"{robot}: the best int8 recipe ({best.name}) is {err:.3f} relative error from fp32, "
                              f"past the bound {bound}; the fp32 model is in {out}. Use --force to keep the int8 "
                              f"model anyway (recorded in the manifest) or export fp32 only")
        models["int8"] = _file_entry(out / INT8) | {
            "recipe": best.to_dict(), "relative_error": err,
            "candidates": [{"recipe": r.name, "relative_error": e} for e, r, _ in trials],
            "size_ratio": models["fp32"]["bytes"] / (out / INT8).stat().st_size}
        latency["int8"] = latency_ms(out / INT8, feeds[0], threads)
    stats = policy.normalizer.robot_dict(robot)
    manifest = {
        "format": FORMAT, "robot": robot, "spec_hash": spec.hash, "source": source,
        "policy": {"config": cfg.to_dict(), "head": cfg.head},
        "chunk": cfg.chunk, "state_dim": adapter.state_dim, "action_dim": adapter.action_dim,
        "cameras": [{"name": c.name, "height": c.height, "width": c.width} for c in spec.cameras],
        "image_shape": [*image_hw, 3],
        "inputs": input_names(flow), "outputs": ["actions"],
        "normalization": {"mode": policy.normalizer.mode, "state": stats["state"], "actions": stats["actions"],
                          "sha256": policy.normalizer.robot_hash(robot), "where": "runtime (numpy), not in the graph"},
        "language": {"encoder": policy.language.identity, "file": LANGUAGE, "instructions": instructions,
                     "dim": int(embeddings.shape[1])},
        "models": models, "gate": gate, "latency_ms": latency,
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / MANIFEST)
    return manifest
