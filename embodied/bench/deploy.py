"""`embodied bench deploy`: what quantized on-device inference buys, measured in one run.

Inference part: the checkpoint (`--policy runs/X --robot R`) is exported to a temporary
bundle (int8 recipe chosen as `embodied export` chooses it, `--calibration-data` adding the
static recipes), then one observation is timed per chunk, end to end (`infer(obs)` ->
`ActionChunk` in robot units), in three runtimes:

    ort_int8          PolicyEngine on the int8 model
    ort_fp32          PolicyEngine on the fp32 model
    torch_fp32_eager  VLAPolicy.act, torch eager

each in its own fresh process, one after another, all with the same thread count: thread
pools of two runtimes in one process spin and spoil each other's timings. The three are
timed in `rounds` interleaved rounds (int8, fp32, torch, int8, fp32, ...), so that load
from anything else on the machine falls on all of them alike: each speed-up is the median
of its per-round ratios, each runtime's p50 / p90 / p99 the median over rounds of the
percentiles of its `calls` calls after warm-up. Also reported: the on-disk size ratio and
pass/fail against TARGETS.

A checkpoint is required rather than trained here: the numbers mean something only for the
policy that will be deployed (a freshly initialized or briefly trained one has the right
shapes, but its activation ranges, hence its int8 error, are not a trained policy's).

Deploy-loop part (`embodied.bench.deploy_loop`, skipped with `loop=None`): the int8 bundle
drives the emulated arm in seeded episodes of a task, fault-free and under a fault profile,
in a fresh torch-free process: success of each and their ratio, joint-limit violations,
faults by kind and the audit of injected faults against the black box, loop period error,
peak RSS. The bundle is exported with the instructions of those episodes' scenes.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from embodied.bench.deploy_loop import LoopBench, peak_rss_mb, run as run_deploy_loop
from embodied.bench.machine import describe

TARGETS = {"int8_p50_ms": 5.0, "int8_vs_ort_fp32": 1.3, "int8_vs_torch": 3.0, "size_ratio": 2.5}
DEFAULT_INSTRUCTION = "pick up the red cube"
RUNTIMES = ("ort_int8", "ort_fp32", "torch_fp32_eager")


def _percentiles(fn: Callable[[], Any], calls: int, warmup: int) -> dict[str, Any]:
    """Latency [ms] of `fn` over `calls` calls after `warmup` calls, and this process's peak RSS
    (VmHWM: `ru_maxrss` would include the bench's, which holds torch)."""
    for _ in range(warmup):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        times[i] = 1e3 * (time.perf_counter() - t0)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "mean": round(float(times.mean()), 3), "calls": calls, "warmup": warmup,
            "process_peak_rss_mb": peak_rss_mb()}


def _time_engine(bundle: str, precision: str, threads: int, obs: Any, calls: int, warmup: int) -> dict[str, Any]:
    """Runs in a fresh process: PolicyEngine (no torch imported)."""
    from embodied.runtime import PolicyEngine

    engine = PolicyEngine(bundle, precision=precision, threads=threads)
    out = _percentiles(lambda: engine.infer(obs), calls, warmup)
    return out | {"session_p50": round(engine.latency()["p50"], 3), "threads": threads}


def _time_torch(policy: str, robot: str, threads: int, obs: Any, calls: int, warmup: int,
                cache: str | None) -> dict[str, Any]:
    """Runs in a fresh process: the checkpoint in torch eager mode."""
    import torch

    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.rundir import resolve_policy

    torch.set_num_threads(threads)
    model = load_checkpoint(resolve_policy(policy), robots_needed=[robot], language=LanguageEncoder(cache)).eval()
    with torch.inference_mode():
        return _percentiles(lambda: model.act(obs), calls, warmup) | {"threads": threads}


def _isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`fn(*args)` in a fresh process (forked from a clean fork server, never from this one)."""
    with mp.get_context("forkserver").Pool(1) as pool:
        return pool.apply(fn, args)


def _observation(manifest: dict[str, Any], instruction: str) -> Any:
    """One observation of the bundle's robot: state at the dataset mean, seeded random images."""
    from embodied.policy.io import Observation

    rng = np.random.default_rng(0)
    state = np.asarray(manifest["normalization"]["state"].get("mean", np.zeros(manifest["state_dim"])), np.float32)
    images = {c["name"]: rng.integers(0, 256, (c["height"], c["width"], 3), dtype=np.uint8)
              for c in manifest["cameras"]}
    return Observation(manifest["robot"], instruction, state, images)


def _interleaved(timers: dict[str, Callable[[], dict[str, Any]]], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Runtime -> its timings, one per round; each round times every runtime once, in order."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            out[name].append(timer())
    return out


def _over_rounds(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """One runtime's summary: every timing as its median over rounds, the rounds' p50s, the peak RSS."""
    timings = [k for k in ("p50", "p90", "p99", "mean", "session_p50") if k in per_round[0]]
    med = {k: round(float(np.median([t[k] for t in per_round])), 3) for k in timings}
    return per_round[0] | med | {"rounds_p50": [t["p50"] for t in per_round],
                                 "process_peak_rss_mb": max(t["process_peak_rss_mb"] for t in per_round)}


def _ratios(rounds: dict[str, list[dict[str, Any]]], models: dict[str, Any]) -> dict[str, float]:
    """Speed-ups as medians of per-round ratios (each round's runtimes ran back to back)."""
    def speedup(other: str) -> float:
        return round(float(np.median([o["p50"] / i["p50"] for o, i in zip(rounds[other], rounds["ort_int8"])])), 2)

    return {"int8_vs_ort_fp32": speedup("ort_fp32"), "int8_vs_torch": speedup("torch_fp32_eager"),
            "size_ratio": round(models["fp32"]["bytes"] / models["int8"]["bytes"], 2)}


def run(policy: str, robot: str, instructions: Sequence[str] = (), calibration_data: str | None = None,
        calls: int = 200, warmup: int = 20, threads: int = 1, rounds: int = 3, cache: str | None = None,
        loop: LoopBench | None = LoopBench(), blackbox_dir: str | Path = "out/bench") -> dict[str, Any]:
    """Export `policy` for `robot` to a temporary bundle, time the three runtimes and (unless
    `loop` is None) run the deploy loop, its black boxes written to `blackbox_dir`; the summary."""
    import onnxruntime
    import torch

    from embodied.export import export_bundle
    from embodied.export_int8 import Calibration
    from embodied.policy import LanguageEncoder

    instructions = list(instructions) or [DEFAULT_INSTRUCTION]
    if loop is not None:
        instructions = list(dict.fromkeys(instructions + loop.instructions(robot)))
    with tempfile.TemporaryDirectory(prefix="bench_deploy_") as tmp:
        bundle = str(Path(tmp) / robot)
        m = export_bundle(policy, robot, bundle, instructions, quantize_int8=True, force=True, threads=threads,
                          language=LanguageEncoder(cache), calibration=Calibration(calibration_data)
                          if calibration_data else None)
        obs = _observation(m, instructions[0])
        per_round = _interleaved({
            "ort_int8": lambda: _isolated(_time_engine, bundle, "int8", threads, obs, calls, warmup),
            "ort_fp32": lambda: _isolated(_time_engine, bundle, "fp32", threads, obs, calls, warmup),
            "torch_fp32_eager": lambda: _isolated(_time_torch, policy, robot, threads, obs, calls, warmup, cache),
        }, rounds)
        timings = {name: _over_rounds(t) for name, t in per_round.items()}
        ratios = _ratios(per_round, m["models"])
        i8 = m["models"]["int8"]
        summary = {
            "benchmark": "deploy",
            "machine": describe(onnxruntime=onnxruntime.__version__, torch=torch.__version__),
            "policy": m["source"], "robot": robot, "preset": m["policy"]["config"].get("name"),
            "head": m["policy"]["head"], "chunk": m["chunk"], "threads": threads, "rounds": rounds,
            "bundle": {"path": bundle, "int8_recipe": i8["recipe"]["name"], "int8_relative_error": i8["relative_error"],
                       "int8_error_bound": m["gate"]["bound"], "int8_within_bound": m["gate"]["passed"],
                       "calibration": i8["calibration"], "candidates": i8["candidates"],
                       "bytes": {"fp32": m["models"]["fp32"]["bytes"], "int8": i8["bytes"]}},
            "inference_ms": timings, "ratios": ratios, "targets": TARGETS,
            "meets_targets": {"int8_p50_ms": timings["ort_int8"]["p50"] <= TARGETS["int8_p50_ms"],
                              **{k: ratios[k] >= TARGETS[k] for k in ratios}},
        }
        summary["deploy_loop"] = run_deploy_loop(bundle, loop, blackbox_dir) if loop else {"status": "skipped"}
    summary["bundle"]["path"] = "(temporary, removed)"
    return summary
