"""`embodied bench data`: pooled-loader throughput (zarr and LeRobot mp4) and memory growth.

Synthetic stores (cached under out/bench/data_cache/): `episodes` x `frames` frames of two
96x96 cameras with smooth images and a moving object (Blosc/zstd and H.264 see
realistic content), 6-dim state and action. Every measurement runs in a fresh child
process pinned to `cores` CPU cores: a DataLoader with `workers` workers, batch size 64,
H=16, mean/std normalization, `ChunkBatchSampler`. The first batches (worker start-up)
are not timed. Memory: peak RSS of the main process and of the largest worker for the
dataset (1x) and for the dataset pooled with a copy of itself (2x, twice the frames).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import multiprocessing as mp
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from embodied.bench.machine import describe

TARGETS = {"zarr_samples_per_s": 2000}
CACHE = Path("out/bench/data_cache")
CAMERAS = {"front": (96, 96), "wrist": (96, 96)}
NOISE = 0.0  # sensor noise std [intensity levels]; 0 compresses like MuJoCo renders (~6x)
TASKS = ("pick up the red cube", "push the block to the green zone", "place the cube in the bin")


def _smooth_frames(rng: np.random.Generator, t: int, h: int, w: int) -> np.ndarray:
    """uint8[t, h, w, 3]: smooth random background, a moving square, optional sensor noise."""
    coarse = rng.uniform(40, 215, size=(6, 6, 3)).astype(np.float32)
    ys, xs = np.linspace(0, 5, h), np.linspace(0, 5, w)
    y0, x0 = np.floor(ys).astype(int).clip(0, 4), np.floor(xs).astype(int).clip(0, 4)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    bg = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
          + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    frames = np.repeat(bg[None], t, axis=0)
    path = np.cumsum(rng.normal(0, 1.0, size=(t, 2)), axis=0) + [h / 2, w / 2]
    color = rng.uniform(0, 255, size=3)
    for i, (cy, cx) in enumerate(path.clip(8, [h - 8, w - 8]).astype(int)):
        frames[i, cy - 6:cy + 6, cx - 6:cx + 6] = color
    frames += rng.normal(0, NOISE, size=frames.shape).astype(np.float32)
    return frames.clip(0, 255).astype(np.uint8)


def make_store(path: Path, episodes: int, frames: int, seed: int = 0, robot: str = "so100"):
    """Write (or reuse, when complete and made with the same parameters) a synthetic store
    at `path`; returns (store, made_now)."""
    from embodied.data import Episode, EpisodeStore

    marker = path.with_suffix(".done.json")
    params = {"episodes": episodes, "frames": frames, "seed": seed, "robot": robot,
              "cameras": {c: list(v) for c, v in CAMERAS.items()}, "noise": NOISE}
    if marker.is_file() and json.loads(marker.read_text()) == params and path.exists():
        return EpisodeStore.open(path), False
    shutil.rmtree(path, ignore_errors=True)
    store = EpisodeStore.create(path, robot, 30.0, 6, 6, CAMERAS)
    rng = np.random.default_rng(seed)
    for e in range(episodes):
        q = np.cumsum(rng.normal(0, 0.02, size=(frames + 1, 6)), axis=0).astype(np.float32)
        store.append(Episode(state=q[:-1], action=q[1:], timestamp=np.arange(frames, dtype=np.float32) / 30.0,
                             images={c: _smooth_frames(rng, frames, h, w) for c, (h, w) in CAMERAS.items()},
                             task=TASKS[e % len(TASKS)], success=True, seed=e))
    store.stats()
    marker.write_text(json.dumps(params))
    return EpisodeStore.open(path), True


def _lerobot_api():
    """(export_lerobot, LeRobotSource) when embodied.data.lerobot provides them, else None."""
    if importlib.util.find_spec("embodied.data.lerobot") is None:
        return None
    mod = importlib.import_module("embodied.data.lerobot")
    if not all(hasattr(mod, n) for n in ("export_lerobot", "LeRobotSource")):
        return None
    return mod.export_lerobot, mod.LeRobotSource


def _open(kind: str, path: str):
    if kind == "zarr":
        from embodied.data import EpisodeStore

        return EpisodeStore.open(path)
    return _lerobot_api()[1](path)


def _measure(kind: str, paths: list[str], samples: int, workers: int, cores: int, batch: int, horizon: int) -> dict:
    """Child process: samples/s and peak RSS of one loader configuration."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    import torch

    from embodied.data.loader import make_loader

    mp.set_start_method("fork", force=True)  # workers fork from here, as in a plain Linux training script
    torch.set_num_threads(1)
    sources = [_open(kind, p) for p in paths]
    loader = make_loader(sources, batch_size=batch, horizon=horizon, num_workers=workers,
                         num_samples=samples, seed=0)
    warmup, n, t0, cpu0 = 4, 0, time.perf_counter(), 0.0
    for i, b in enumerate(loader):
        if i == warmup:
            n, t0, cpu0 = 0, time.perf_counter(), _cpu_seconds()
        n += len(b["robot"])
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    workers_hwm = _children_peak_rss_mb()
    del loader, b
    cpu_us = cpu / n * 1e6
    return {"samples_per_s": round(n / elapsed, 1), "timed_samples": n,
            "cpu_us_per_sample": round(cpu_us, 1), "cpu_utilization": round(cpu / elapsed / cores, 3),
            "samples_per_s_if_cores_idle": round(cores * 1e6 / cpu_us, 1), "frames": sum(s.num_frames for s in sources),
            "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_worker_mb": round(workers_hwm, 1)}


def _children() -> list[Path]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                out.append(stat.parent)
        except (OSError, ValueError, IndexError):
            continue
    return out


def _cpu_seconds() -> float:
    """CPU time [s] (user + system) of this process and its live children (the workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in [Path("/proc/self"), *_children()]:
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total


def _children_peak_rss_mb() -> float:
    """Largest peak RSS (VmHWM) among this process's live children (the DataLoader workers)."""
    peak = 0.0
    for proc in _children():
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError, IndexError):
            continue
    return peak or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _child(conn, args) -> None:
    try:
        conn.send(("ok", _measure(*args)))
    except BaseException as e:  # noqa: BLE001  (reported to the parent)
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def _isolated(*args) -> dict:
    """Run `_measure` in a fresh non-daemonic process (its DataLoader starts workers)."""
    ctx = mp.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, args))
    proc.start()
    child.close()
    status, value = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"loader measurement failed: {value}")
    return value


def run(episodes: int = 200, frames: int = 100, samples: int = 20_000, workers: int = 2, cores: int = 2,
        batch: int = 64, horizon: int = 16, cache: Path = CACHE) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store, fresh = make_store(cache / f"store_{episodes}x{frames}.zarr", episodes, frames)
    twin, lr_path = cache / f"store_{episodes}x{frames}_copy.zarr", cache / f"lerobot_{episodes}x{frames}"
    if fresh:  # derived copies of an older store are stale
        for stale in (twin, lr_path):
            shutil.rmtree(stale, ignore_errors=True)
    if not twin.exists():  # 2x: the same frames again, in a second store on disk
        shutil.copytree(store.path, twin)
    prep_s = time.perf_counter() - t0
    size_mb = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file()) / 2**20
    args = (samples, workers, cores, batch, horizon)
    zarr_1x = _isolated("zarr", [str(store.path)], *args)
    zarr_2x = _isolated("zarr", [str(store.path), str(twin)], *args)
    result = {
        "benchmark": "data",
        "machine": describe(cores_used=cores),
        "dataset": {"episodes": episodes, "frames_per_episode": frames,
                    "cameras": {c: list(v) for c, v in CAMERAS.items()},
                    "zarr_mb_on_disk": round(size_mb, 1), "prepare_s": round(prep_s, 1)},
        "loader": {"batch_size": batch, "horizon": horizon, "workers": workers,
                   "sampler": "ChunkBatchSampler(window=4)",
                   "normalization": "mean_std", "timed_samples": samples},
        "zarr": zarr_1x,
        "memory": {"frames_1x": zarr_1x["frames"], "frames_2x": zarr_2x["frames"],
                   "samples_per_s_2x": zarr_2x["samples_per_s"],
                   "peak_rss_main_mb": [zarr_1x["peak_rss_main_mb"], zarr_2x["peak_rss_main_mb"]],
                   "peak_rss_worker_mb": [zarr_1x["peak_rss_worker_mb"], zarr_2x["peak_rss_worker_mb"]],
                   "worker_growth_ratio": round(zarr_2x["peak_rss_worker_mb"] / zarr_1x["peak_rss_worker_mb"], 3),
                   "main_growth_ratio": round(zarr_2x["peak_rss_main_mb"] / zarr_1x["peak_rss_main_mb"], 3)},
    }
    api = _lerobot_api()
    if api is None:
        result["lerobot"] = "skipped: embodied.data.lerobot not present"
    else:
        export_lerobot, _ = api
        try:
            if not lr_path.exists():
                export_lerobot(store, lr_path)
            lr = _isolated("lerobot", [str(lr_path)], *args)
            lr["mb_on_disk"] = round(sum(f.stat().st_size for f in lr_path.rglob("*") if f.is_file()) / 2**20, 1)
            lr["zarr_over_lerobot"] = round(zarr_1x["samples_per_s"] / lr["samples_per_s"], 2)
            result["lerobot"] = lr
        except Exception as e:  # report, keep the zarr half
            result["lerobot"] = f"failed: {type(e).__name__}: {e}"
    result["targets"] = TARGETS
    result["meets_targets"] = {"zarr_samples_per_s": bool(zarr_1x["samples_per_s"] >= TARGETS["zarr_samples_per_s"])}
    return result
