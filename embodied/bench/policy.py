"""`embodied bench policy`: cost of the VLA policy on this machine.

- inference latency of the `small` preset in fp32 on 2 threads: `VLAPolicy.act` on one
  observation of so100 (two 96 x 96 cameras), p50 / p99 per chunk, both action heads, and
  of `small_pretrained` (the L1 head over the frozen EfficientNet-Lite0 backbone);
- parameter counts (shared and per robot adapter);
- peak memory (RSS) of a process training `small` for a few steps at the default batch
  size on simulated demonstrations (single process, no DataLoader workers: each worker
  adds its own image cache, bounded by `cache_mb`), and its time per step (the training
  loop's own clock: batch, forward, backward, update; the run's startup excluded).

The machine is part of the result (`embodied.bench.machine`): inference that took 5 ms per
chunk on the 2-core machine of README's earlier timings took 15 ms on another 2-core machine
(AMD EPYC, AVX2 kernels) of the same nominal size.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from embodied.bench.machine import describe

TARGETS = {"train_peak_rss_gb": 6.0}


def _stats(dim: int):
    from embodied.data.transforms import NormStats

    z, o = np.zeros(dim, np.float32), np.ones(dim, np.float32)
    return {"state": NormStats(z, o, -o, o, 1), "actions": NormStats(z, o, -o, o, 1)}


def _latency(head: str, calls: int, threads: int, cache: str, name: str = "small") -> dict:
    import torch

    import robots
    from embodied.policy import LanguageEncoder, Observation, VLAPolicy, preset
    from embodied.policy.normalizer import Normalizer

    torch.set_num_threads(threads)
    spec = robots.load("so100")
    n = len(spec.state_names)
    policy = VLAPolicy.for_robots(preset(name, head=head), ["so100"],
                                  LanguageEncoder(cache_dir=cache),
                                  Normalizer({"so100": _stats(n)})).eval()
    rng = np.random.default_rng(0)
    obs = Observation("so100", "pick up the red cube", rng.normal(size=n).astype(np.float32),
                      {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in spec.cameras})
    for _ in range(10):
        policy.act(obs)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        policy.act(obs)
        times.append(1000 * (time.perf_counter() - t0))
    shared = sum(p.numel() for name, p in policy.named_parameters() if not name.startswith("adapters."))
    adapter = sum(p.numel() for p in policy.adapters["so100"].parameters())
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "mean_ms": round(float(np.mean(times)), 2), "calls": calls, "chunk": policy.config.chunk,
            "parameters": {"total": shared + adapter, "shared": shared, "so100_adapter": adapter}}


def _train_peak(data: list[str], steps: int, batch_size: int, cache: str, out: str) -> dict:
    from embodied.train import TrainConfig, train

    t0 = time.perf_counter()
    summary = train(TrainConfig(out=out, data=tuple(data), preset="small", steps=steps, batch_size=batch_size,
                                workers=0, language_cache=cache, progress=False, warmup=0))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_gb": round(peak_kb / 2**20, 3), "step_ms": round(1000 * summary["seconds"] / steps, 1),
            "wall_s_incl_startup": round(time.perf_counter() - t0, 1)}


def _cpu_capability() -> str:
    """The widest vector instructions torch's CPU kernels use here ("AVX2", "AVX512")."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def _isolated(fn, *args):
    with mp.get_context("forkserver").Pool(1) as pool:
        return pool.apply(fn, args)


def run(calls: int = 200, threads: int = 2, train_steps: int = 20, batch_size: int | None = None) -> dict:
    from embodied.collect.simgen import SimgenConfig, generate
    from embodied.train.config import TrainConfig, default_language_cache

    batch_size = batch_size or TrainConfig.__dataclass_fields__["batch_size"].default
    cache = str(default_language_cache())
    latency = {head: _isolated(_latency, head, calls, threads, cache) for head in ("l1", "flow")}
    latency["l1+efficientnet_lite0"] = {**_isolated(_latency, "l1", calls, threads, cache, "small_pretrained"),
                                        "preset": "small_pretrained"}
    with tempfile.TemporaryDirectory() as tmp:
        data = [str(Path(tmp) / f"{r}_lift.zarr") for r in ("so100", "koch")]
        for r, d in zip(("so100", "koch"), data):
            generate(SimgenConfig(r, "lift", 3, Path(d), workers=min(2, os.cpu_count() or 1)), progress=False)
        train = _isolated(_train_peak, data, train_steps, batch_size, cache, str(Path(tmp) / "run"))
    return {
        "benchmark": "policy",
        "machine": describe(torch_cpu_capability=_cpu_capability()),
        "preset": "small", "dtype": "float32", "threads": threads,
        "inference": latency,
        "parameters": latency["l1"]["parameters"],
        "training": {"batch_size": batch_size, "steps": train_steps, "robots": ["so100", "koch"], **train},
        "targets": TARGETS,
        "meets_targets": {"train_peak_rss_gb": train["peak_rss_gb"] <= TARGETS["train_peak_rss_gb"]},
    }
