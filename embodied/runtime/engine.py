"""PolicyEngine: `infer(Observation) -> ActionChunk` on an export bundle (numpy + onnxruntime).

Raw observation in robot units -> normalized state, camera images in bundle order, camera
mask, the instruction's stored embeddings (sentence, and tokens with their mask for token-level
policies) -> ONNX Runtime -> normalized actions -> robot
units with the bundle's statistics. Every call's latency is recorded.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from embodied.policy.io import ActionChunk, Observation
from embodied.runtime.bundle import Bundle, load_bundle
from embodied.runtime.errors import CorruptBundle, ObservationRefused


class PolicyEngine:
    """Args:
        bundle: a Bundle or its directory.
        precision: "int8", "fp32" or "auto" (int8 when the bundle has it).
        threads: ONNX Runtime intra-op threads (the robot computer's cores to use).
        allow_missing_cameras: run with absent cameras masked (as in training) instead of
            refusing the observation.
        robot: the robot this engine drives (the bundle must be its own).
        seed: seed of the flow head's initial noise (restarted by `reset`).
        history: how many latencies `latency()` summarizes.
    """

    def __init__(self, bundle: Bundle | str | os.PathLike, precision: str = "auto", threads: int = 1,
                 allow_missing_cameras: bool = False, robot: str | None = None, seed: int = 0, history: int = 1000):
        import onnxruntime as ort

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(Path(bundle), robot)
        if robot is not None and robot != self.bundle.robot:
            load_bundle(self.bundle.path, robot)  # raises BundleMismatch with the full message
        self.precision = ("int8" if "int8" in self.bundle.precisions else "fp32") if precision == "auto" else precision
        path = self.bundle.model_path(self.precision)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise CorruptBundle(f"ONNX Runtime cannot load {path} ({type(e).__name__}: {e}); export the bundle "
                                "again") from e
        names = [i.name for i in self.session.get_inputs()]
        if names != self.bundle.manifest["inputs"]:
            raise CorruptBundle(f"{path} has inputs {names}, the manifest says {self.bundle.manifest['inputs']}")
        self.threads, self.allow_missing_cameras, self.seed = int(threads), allow_missing_cameras, seed
        self._flow = "noise" in names
        self._rng = np.random.default_rng(seed)
        self._latency_ms: deque[float] = deque(maxlen=history)

    @property
    def robot(self) -> str:
        return self.bundle.robot

    @property
    def chunk(self) -> int:
        """Action chunk length H [control steps]."""
        return self.bundle.chunk

    def feed(self, obs: Observation) -> dict[str, np.ndarray]:
        """The graph inputs of one observation (validated; raises ObservationRefused)."""
        b, m = self.bundle, self.bundle.manifest
        if obs.robot != b.robot:
            raise ObservationRefused(f"observation of robot {obs.robot!r} given to the bundle of {b.robot!r}")
        if obs.state.shape != (m["state_dim"],):
            raise ObservationRefused(f"{b.robot} state must be float32[{m['state_dim']}] in robot units, found "
                                     f"{list(obs.state.shape)}")
        unknown = sorted(set(obs.images) - set(b.cameras))
        missing = [c for c in b.cameras if c not in obs.images]
        if unknown:
            raise ObservationRefused(f"{b.robot} has no cameras {unknown}; its cameras: {b.cameras}")
        if missing and (not self.allow_missing_cameras or len(missing) == len(b.cameras)):
            raise ObservationRefused(f"camera(s) {missing} of {b.robot} missing from the observation (the bundle "
                                     f"expects {b.cameras}); check the camera connection"
                                     + ("" if self.allow_missing_cameras else
                                        " or allow_missing_cameras=True to run with them masked"))
        images = np.zeros((1, len(b.cameras), *b.image_shape), np.uint8)
        for j, cam in enumerate(b.cameras):
            if cam in obs.images:
                img = obs.images[cam]
                if img.shape != b.image_shape:
                    raise ObservationRefused(f"camera {cam!r} gives {list(img.shape)} images, the bundle expects "
                                             f"{list(b.image_shape)} (resize to the RobotSpec resolution)")
                images[0, j] = img
        feed = {"state": b.normalize_state(obs.state)[None], "images": images,
                "camera_mask": np.array([[c in obs.images for c in b.cameras]]),
                **b.language_inputs(obs.instruction)}
        if self._flow:
            feed["noise"] = self._rng.standard_normal((1, b.chunk, m["action_dim"])).astype(np.float32)
        return feed

    def infer(self, obs: Observation) -> ActionChunk:
        """Raw observation -> action chunk float32[H, m] in robot units."""
        feed = self.feed(obs)
        t0 = time.perf_counter()
        out = self.session.run(None, feed)[0]
        self._latency_ms.append(1e3 * (time.perf_counter() - t0))
        return ActionChunk(self.bundle.unnormalize_actions(out[0], obs.state))

    def reset(self) -> None:
        """Start a new episode: restart the noise generator and the latency record."""
        self._rng = np.random.default_rng(self.seed)
        self._latency_ms.clear()

    def latency(self) -> dict[str, Any]:
        """Latency of the recorded ONNX Runtime calls [ms]: count, last, mean, p50, p99, max."""
        t = np.asarray(self._latency_ms, np.float64)
        if not len(t):
            return {"count": 0}
        return {"count": len(t), "last": float(t[-1]), "mean": float(t.mean()), "p50": float(np.percentile(t, 50)),
                "p99": float(np.percentile(t, 99)), "max": float(t.max()), "precision": self.precision,
                "threads": self.threads}
