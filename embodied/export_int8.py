"""Choosing the int8 model of a bundle: ONNX Runtime quantization recipes measured against fp32.

Dynamic recipes quantize the weights ahead of time and each activation at run time; they
need no data. Static recipes also fix the activation ranges ahead of time, calibrated on
real observations of the robot's dataset, so that no range is computed per call and the
image encoder's Conv layers run as QLinearConv too (dynamic ConvInteger is slow on CPU).
Static ranges are only as good as the frames they were calibrated on, which is why they
need the robot's own data and why every candidate is measured rather than trusted.

Calibration and measurement frames are fed exactly as the robot feeds them: each dataset
frame becomes an `Observation` in robot units and goes through `PolicyEngine.feed` (the
bundle's normalization, camera order and instruction embeddings), the one code path the
deploy runtime uses.

Every candidate is scored by its relative error against fp32 on held-out inputs (dataset
frames not used for calibration when there are any, synthetic inputs otherwise) and by its
latency. Any candidate inside the error bound passes the accuracy gate, and speed is what
the robot gains from int8, so the fastest candidate within `HEADROOM` of the bound wins:
the headroom is the margin for an error measured on a few held-out frames being an
estimate. When no candidate is that close, the most accurate one is taken (and the bound
then decides whether it may be written). Measured on this project's `small` policy on an
AVX2 CPU: signed 7-bit weights (`reduce_range`) run fastest; unsigned weights take MLAS's
slower u8u8 path; static QDQ models pay for their Q/DQ pairs around every fp32 op.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embodied.errors import InvalidInput
from embodied.policy.io import Observation

HEADROOM = 0.5  # a candidate within this fraction of the error bound is accurate enough to be chosen for speed


@dataclass(frozen=True)
class Recipe:
    """One ONNX Runtime quantization recipe (`quantize_dynamic`, or `quantize_static` when `static`).

    Args:
        weight_type, activation_type: "QInt8" or "QUInt8" (activations: static recipes only).
        reduce_range: 7-bit weights, which avoid int16 saturation on CPUs without VNNI.
        op_types: the operators quantized.
        static: calibrate activation ranges on dataset frames (QDQ format).
        calibrate_method: "MinMax" or "Percentile" (static only).
    """

    name: str
    weight_type: str = "QInt8"
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Gemm")
    per_channel: bool = False
    static: bool = False
    activation_type: str = "QUInt8"
    calibrate_method: str = "MinMax"

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "mode": "static" if self.static else "dynamic", "weight_type": self.weight_type,
             "reduce_range": self.reduce_range, "op_types": list(self.op_types), "per_channel": self.per_channel}
        if self.static:
            d |= {"activation_type": self.activation_type, "calibrate_method": self.calibrate_method}
        return d


DYNAMIC_RECIPES: tuple[Recipe, ...] = (
    Recipe("s8_reduce_range", "QInt8", reduce_range=True),
    Recipe("u8_weights", "QUInt8"),
    Recipe("s8_per_channel_reduce_range", "QInt8", reduce_range=True, per_channel=True),
    Recipe("s8_default", "QInt8"),
)
STATIC_RECIPES: tuple[Recipe, ...] = (
    Recipe("static_minmax", reduce_range=True, per_channel=True, static=True, op_types=("MatMul", "Gemm", "Conv")),
    Recipe("static_percentile", reduce_range=True, per_channel=True, static=True, op_types=("MatMul", "Gemm", "Conv"),
           calibrate_method="Percentile"),
    Recipe("static_linear_only", reduce_range=True, per_channel=True, static=True),
)
RECIPES = DYNAMIC_RECIPES + STATIC_RECIPES


@dataclass(frozen=True)
class Calibration:
    """Real observations for static int8 recipes, from the robot's dataset.

    Args:
        data: an EpisodeStore (zarr) or LeRobot v3 folder of the exported robot.
        frames: frames the activation ranges are calibrated on.
        heldout: further frames (disjoint) every candidate's error is measured on.
        seed: seed of the frame sample.
    """

    data: str
    frames: int = 64
    heldout: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.frames < 1 or self.heldout < 1:
            raise InvalidInput(f"calibration needs frames >= 1 and heldout >= 1, found {self.frames}, {self.heldout}")

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "frames": self.frames, "heldout": self.heldout, "seed": self.seed}


@dataclass(frozen=True)
class Candidate:
    """A quantized model and what it measured: relative error vs fp32, p50 latency [ms]."""

    recipe: Recipe
    path: Path
    relative_error: float
    latency_p50_ms: float

    def to_dict(self, chosen: bool) -> dict[str, Any]:
        return {"recipe": self.recipe.name, "mode": "static" if self.recipe.static else "dynamic",
                "relative_error": self.relative_error, "latency_p50_ms": self.latency_p50_ms, "chosen": chosen}


def dataset_observations(cal: Calibration, robot: str, instructions: Sequence[str]) -> list[Observation]:
    """`cal.frames + cal.heldout` frames of `cal.data` sampled without replacement (seeded), as
    observations in robot units. Each frame's instruction is its episode's task when the bundle
    serves that text, otherwise the exported instructions in turn (a bundle can only be fed
    instructions it holds embeddings for)."""
    from embodied.data.episode import IMAGE_PREFIX, STATE
    from embodied.data.mixture import guess_format, open_source

    path = Path(cal.data)
    if guess_format(path) is None:
        raise InvalidInput(f"--calibration-data {path} is not a dataset (no zarr.json, no meta/info.json); give an "
                           "EpisodeStore or LeRobot v3 folder of the robot, e.g. one written by `embodied simgen`")
    source = open_source(path)
    if source.robot != robot:
        raise InvalidInput(f"--calibration-data {path} holds robot {source.robot!r}, the bundle is for {robot!r}; "
                           f"calibrate on {robot}'s own frames")
    need = cal.frames + cal.heldout
    if source.num_frames < need:
        raise InvalidInput(f"--calibration-data {path} has {source.num_frames} frames, calibration needs {need} "
                           f"({cal.frames} + {cal.heldout} held out); record more or lower --calibration-frames")
    rng = np.random.default_rng(cal.seed)
    frames = rng.choice(source.num_frames, need, replace=False)
    episodes = np.searchsorted(np.asarray(source.episode_ends), frames, side="right")
    out = []
    for k, (i, e) in enumerate(zip(frames.tolist(), episodes.tolist())):
        task = source.episode_meta(e)["task"]
        instruction = task if task in instructions else instructions[k % len(instructions)]
        images = {cam: np.asarray(source.read(IMAGE_PREFIX + cam, i, i + 1)[0]) for cam in source.cameras}
        out.append(Observation(robot, instruction, np.asarray(source.read(STATE, i, i + 1)[0]), images))
    return out


def engine_feeds(engine: Any, observations: Sequence[Observation]) -> list[dict[str, np.ndarray]]:
    """Graph inputs of `observations` through `PolicyEngine.feed` (refusals name the dataset problem)."""
    from embodied.runtime.errors import ObservationRefused

    try:
        return [engine.feed(obs) for obs in observations]
    except ObservationRefused as e:
        raise InvalidInput(f"a calibration frame cannot be fed to the bundle: {e}") from e


def _reader(feeds: Sequence[dict[str, np.ndarray]]) -> Any:
    """An `onnxruntime.quantization.CalibrationDataReader` over prepared graph inputs."""
    from onnxruntime.quantization import CalibrationDataReader

    class FeedReader(CalibrationDataReader):
        def __init__(self):
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    return FeedReader()


def quantize(fp32: Path, out: Path, recipe: Recipe,
             calibration: Sequence[dict[str, np.ndarray]] | None = None) -> Path:
    """Quantize `fp32` into `out` with `recipe` (static recipes calibrate on `calibration` feeds)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    tmp = out.with_suffix(".tmp")
    if recipe.static:
        if not calibration:
            raise InvalidInput(f"int8 recipe {recipe.name} is static: it needs calibration frames (--calibration-data)")
        with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints its progress
            quantize_static(str(fp32), str(tmp), _reader(calibration), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=list(recipe.op_types), per_channel=recipe.per_channel,
                            reduce_range=recipe.reduce_range,
                            activation_type=getattr(QuantType, recipe.activation_type),
                            weight_type=getattr(QuantType, recipe.weight_type),
                            calibrate_method=getattr(CalibrationMethod, recipe.calibrate_method),
                            extra_options={"MatMulConstBOnly": True})
    else:
        quantize_dynamic(str(fp32), str(tmp), weight_type=getattr(QuantType, recipe.weight_type),
                         reduce_range=recipe.reduce_range, op_types_to_quantize=list(recipe.op_types),
                         per_channel=recipe.per_channel)
    os.replace(tmp, out)
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b|| over all entries (b the reference)."""
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-12))


def session(path: Path, threads: int, spin: bool = True):
    """An ONNX Runtime CPU session; `spin=False` keeps idle pool threads from busy-waiting (for
    timing several sessions of one process in turn)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_all(path: Path, feeds: Sequence[dict[str, np.ndarray]], threads: int = 1) -> np.ndarray:
    """The model's outputs on every feed, float32[N, H, m]."""
    sess = session(path, threads)
    return np.concatenate([sess.run(None, f)[0] for f in feeds])


def call_times_ms(paths: Sequence[Path], feed: dict[str, np.ndarray], threads: int = 1,
                  runs: int = 50) -> np.ndarray:
    """float64[runs, len(paths)]: the duration [ms] of each model's calls on `feed` (after 3
    warm-up calls each), in this process. Several models are timed in turn, call by call, so
    that load from anything else on the machine falls on all of them alike and their ranking
    holds on a busy machine; their idle pool threads then must not spin (they would take the
    core the next model's call needs), while a model timed alone runs as deployed."""
    sessions = [session(p, threads, spin=len(paths) == 1) for p in paths]
    for s in sessions:
        for _ in range(3):
            s.run(None, feed)
    times = np.empty((runs, len(sessions)))
    for i in range(runs):
        for j, s in enumerate(sessions):
            t0 = time.perf_counter()
            s.run(None, feed)
            times[i, j] = 1e3 * (time.perf_counter() - t0)
    return times


def latency_ms(path: Path, feed: dict[str, np.ndarray], threads: int = 1, runs: int = 50) -> dict[str, float]:
    """p50/p90 latency [ms] of one inference of the model at `path` in this process."""
    times = call_times_ms([path], feed, threads, runs)[:, 0]
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)), "runs": runs,
            "threads": threads}


def candidates(fp32: Path, folder: Path, recipes: Sequence[Recipe], measure: Sequence[dict[str, np.ndarray]],
               calibration: Sequence[dict[str, np.ndarray]] | None, threads: int) -> list[Candidate]:
    """Quantize with every recipe (static ones only with `calibration`) and measure each on `measure`."""
    reference = run_all(fp32, measure)
    made = []
    for recipe in recipes:
        if recipe.static and not calibration:
            continue
        path = quantize(fp32, folder / f"policy_int8.{recipe.name}.onnx", recipe, calibration)
        made.append((recipe, path, relative_error(run_all(path, measure), reference)))
    if not made:
        raise InvalidInput(f"no int8 recipe to try among {[r.name for r in recipes]}: static recipes need "
                           "--calibration-data")
    p50 = np.median(call_times_ms([path for _, path, _ in made], measure[0], threads), axis=0)
    return [Candidate(recipe, path, err, float(ms)) for (recipe, path, err), ms in zip(made, p50)]


def choose(found: Sequence[Candidate], bound: float, headroom: float = HEADROOM) -> Candidate:
    """The fastest candidate with relative error <= `headroom * bound`; if none, the most accurate."""
    accurate = [c for c in found if c.relative_error <= headroom * bound]
    if accurate:
        return min(accurate, key=lambda c: c.latency_p50_ms)
    return min(found, key=lambda c: c.relative_error)
