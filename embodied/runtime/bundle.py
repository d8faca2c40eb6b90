"""Export bundles on the robot side: load, validate, normalize (numpy only, no torch).

A bundle is the directory `embodied export` writes (layout in `embodied.export`). Loading
checks, before anything can move: the manifest is readable and of this format, the robot
is known here and (if given) is the one the bundle was exported for, its RobotSpec hash is
unchanged, the normalization statistics match their sha256, and every file is present and
matches its recorded sha256 (the language token files of token-level policies included), and
the language arrays have the shapes the manifest gives.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import robots
from embodied.policy.io import relative_to_state
from embodied.runtime.errors import BundleMismatch, CorruptBundle, ObservationRefused

FORMAT = 1
MANIFEST, FP32, INT8, LANGUAGE = "manifest.json", "policy_fp32.onnx", "policy_int8.onnx", "language.npy"
LANGUAGE_TOKENS, LANGUAGE_TOKEN_MASK = "language_tokens.npy", "language_token_mask.npy"  # token-level policies
PRECISIONS = ("fp32", "int8")
EPS = 1e-6  # as embodied.data.transforms.EPS


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stats_sha256(mode: str, state: dict[str, Any], actions: dict[str, Any]) -> str:
    """sha256 of one robot's statistics, as `embodied.policy.normalizer.Normalizer.robot_hash`."""
    text = json.dumps({"mode": mode, "state": state, "actions": actions}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Bundle:
    """A validated bundle. Use `load_bundle`.

    Args:
        path: the bundle directory.
        manifest: manifest.json as loaded.
        language: the graph's language inputs, row i for `instructions[i]` (`read_language`).
    """

    path: Path
    manifest: dict[str, Any]
    language: dict[str, np.ndarray]

    @property
    def robot(self) -> str:
        return self.manifest["robot"]

    @property
    def chunk(self) -> int:
        """Action chunk length H [control steps]."""
        return int(self.manifest["chunk"])

    @property
    def cameras(self) -> list[str]:
        """Camera names in graph order."""
        return [c["name"] for c in self.manifest["cameras"]]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(h, w, 3) of every camera image [pixels]."""
        return tuple(self.manifest["image_shape"])  # type: ignore[return-value]

    @property
    def instructions(self) -> list[str]:
        return list(self.manifest["language"]["instructions"])

    @property
    def precisions(self) -> list[str]:
        """The precisions this bundle has models for ("fp32", and "int8" when quantized)."""
        return [p for p in PRECISIONS if p in self.manifest["models"]]

    def model_path(self, precision: str) -> Path:
        if precision not in self.precisions:
            raise ObservationRefused(f"bundle {self.path} has no {precision} model; it has {self.precisions}"
                                     + (". Export with --quantize int8" if precision == "int8" else ""))
        return self.path / self.manifest["models"][precision]["file"]

    def language_inputs(self, instruction: str) -> dict[str, np.ndarray]:
        """The graph's language inputs (batch of one) for an exported instruction (exact text)."""
        try:
            i = self.instructions.index(instruction)
        except ValueError:
            raise ObservationRefused(f"instruction {instruction!r} was not exported with bundle {self.path}; it serves "
                                     f"{self.instructions}. Re-export with --instructions {instruction!r}") from None
        return {name: rows[i][None] for name, rows in self.language.items()}

    def _stats(self, key: str) -> tuple[str, dict[str, np.ndarray]]:
        norm = self.manifest["normalization"]
        return norm["mode"], {k: np.asarray(v, np.float32) for k, v in norm[key].items() if k != "count"}

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        """Robot units float32[n] -> normalized float32[n] (as the training loader)."""
        mode, s = self._stats("state")
        if mode == "mean_std":
            return ((state - s["mean"]) / (s["std"] + EPS)).astype(np.float32)
        if mode == "quantile":
            return (2.0 * (state - s["q01"]) / (s["q99"] - s["q01"] + EPS) - 1.0).astype(np.float32)
        return np.asarray(state, np.float32)

    def unnormalize_actions(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Normalized float32[..., H, m] -> robot units float32[..., H, m]; `state` (robot units)
        is what the chunk started from, which relative joint targets are added to."""
        mode, s = self._stats("actions")
        if mode == "mean_std":
            actions = actions * (s["std"] + EPS) + s["mean"]
        elif mode == "quantile":
            actions = (actions + 1.0) * 0.5 * (s["q99"] - s["q01"] + EPS) + s["q01"]
        if self.manifest["normalization"].get("relative_actions", False):
            actions = relative_to_state(actions, state, inverse=True)
        return np.asarray(actions, np.float32)


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not path.is_dir():
        raise CorruptBundle(f"no bundle directory at {path}; write one with `embodied export`")
    if not file.is_file():
        raise CorruptBundle(f"{file} is missing: {path} is not a bundle, or its export did not finish")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptBundle(f"{file} is not valid JSON ({e}); export the bundle again") from e
    if manifest.get("format") != FORMAT:
        raise BundleMismatch(f"{path} has bundle format {manifest.get('format')}, this runtime reads {FORMAT}")
    return manifest


def load_bundle(path: str | os.PathLike, robot: str | None = None) -> Bundle:
    """Read and validate the bundle at `path`.

    Args:
        robot: the robot it will drive; refused (BundleMismatch) if the bundle is another's.

    Raises:
        CorruptBundle: missing, unreadable or altered files.
        BundleMismatch: another robot, an unknown robot, a changed RobotSpec or statistics.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    name = manifest["robot"]
    if robot is not None and robot != name:
        raise BundleMismatch(f"bundle {path} was exported for robot {name!r}, not {robot!r}; "
                             f"export one with `embodied export --robot {robot}`")
    try:
        spec = robots.load(name)
    except robots.UnknownRobot as e:
        raise BundleMismatch(f"bundle {path} is for robot {name!r}, which is not known here ({e})") from e
    if spec.hash != manifest["spec_hash"]:
        raise BundleMismatch(f"bundle {path}: the RobotSpec of {name} changed since export (hash "
                             f"{manifest['spec_hash']} then, {spec.hash} now); restore {spec.root / 'robot.toml'} "
                             "or export again")
    norm = manifest["normalization"]
    if stats_sha256(norm["mode"], norm["state"], norm["actions"]) != norm["sha256"]:
        raise CorruptBundle(f"bundle {path}: normalization statistics do not match their sha256; the manifest was "
                            "edited")
    for precision, entry in manifest["models"].items():
        file = path / entry["file"]
        if not file.is_file():
            raise CorruptBundle(f"bundle {path}: the {precision} model {file.name} is missing")
        if _sha256(file) != entry["sha256"]:
            raise CorruptBundle(f"bundle {path}: {file.name} does not match its recorded sha256 (altered or "
                                "truncated); export the bundle again")
    return Bundle(path, manifest, read_language(path, manifest))


def _read_array(bundle: Path, file: str, shape: tuple[int, ...], dtype: type, sha256: str | None = None) -> np.ndarray:
    """The array in `bundle / file`, checked against its sha256 (if recorded), shape and dtype
    (finite, for floats)."""
    path = bundle / file
    if not path.is_file():
        raise CorruptBundle(f"bundle {bundle}: {file} is missing; export the bundle again")
    if sha256 is not None and _sha256(path) != sha256:
        raise CorruptBundle(f"bundle {bundle}: {file} does not match its recorded sha256 (altered or truncated); "
                            "export the bundle again")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CorruptBundle(f"bundle {bundle}: cannot read {file} ({e}); export the bundle again") from e
    if array.shape != shape or array.dtype != dtype or (array.dtype.kind == "f" and not np.isfinite(array).all()):
        raise CorruptBundle(f"bundle {bundle}: {file} holds {array.dtype}{list(array.shape)}, expected "
                            f"{np.dtype(dtype)}{list(shape)} without NaN or infinity; export the bundle again")
    return array


def read_language(path: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """The language inputs of the bundle's graph, one row per exported instruction, validated:

        language             float32[I, 384]     sentence embeddings (language.npy)
        language_tokens      float32[I, L, 384]  token embeddings (token-level policies only)
        language_token_mask  bool[I, L]          True: a real token (token-level policies only)
    """
    lang = manifest["language"]
    n, dim = len(lang["instructions"]), lang["dim"]
    inputs = {"language": _read_array(path, lang["file"], (n, dim), np.float32)}
    tokens = lang.get("tokens")
    if tokens is not None:
        length, embeddings, mask = tokens["length"], tokens["embeddings"], tokens["mask"]
        inputs["language_tokens"] = _read_array(path, embeddings["file"], (n, length, dim), np.float32,
                                                embeddings["sha256"])
        inputs["language_token_mask"] = _read_array(path, mask["file"], (n, length), np.bool_, mask["sha256"])
    return inputs
