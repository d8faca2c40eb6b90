"""Policy checkpoints: one directory, verified on load.

    DIR/
      weights.safetensors      all trained parameters
      config.json              PolicyConfig
      norm_stats.json          normalization mode and per-robot statistics
      manifest.json            format, chunk length, encoder identities, weights sha256, and per
                               robot: state/action dims, cameras, RobotSpec hash, stats sha256
      adapters/<robot>.safetensors + adapters/<robot>.json
                               adapter-only finetunes: one robot's adapter (with its own image
                               layers and low-rank trunk update when it has them), its statistics
                               and hashes, and the sha256 of the base weights it was trained on

Loading refuses, with CheckpointMismatch, a robot the checkpoint does not know, statistics
whose hash differs (edited, or not those given), a RobotSpec that changed since training,
or encoders of another version; and, with CorruptCheckpoint, missing or altered files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import safetensors.torch
from safetensors import SafetensorError

import robots
from embodied.data.transforms import NormStats
from embodied.errors import CheckpointMismatch, CorruptCheckpoint
from embodied.policy.adapters import RobotAdapter
from embodied.policy.backbones import backbone_identity
from embodied.policy.config import PolicyConfig
from embodied.policy.encoders import LanguageEncoder
from embodied.policy.model import VLAPolicy
from embodied.policy.normalizer import Normalizer

FORMAT = 1
WEIGHTS, CONFIG, STATS, MANIFEST, ADAPTERS = "weights.safetensors", "config.json", "norm_stats.json", "manifest.json", "adapters"
IMAGE_ENCODER = {"name": "conv-stem-film", "trained": True}


def image_encoder_identity(config: PolicyConfig) -> dict[str, Any]:
    """The manifest's image encoder: the FiLM conv layers, and the frozen backbone they read
    (its weights are in weights.safetensors too, so loading needs no package version)."""
    if config.image_backbone == "none":
        return IMAGE_ENCODER
    return {**IMAGE_ENCODER, "backbone": backbone_identity(config.image_backbone, config.backbone_stride)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CorruptCheckpoint(f"{path} is missing; a checkpoint holds {[WEIGHTS, CONFIG, STATS, MANIFEST]}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptCheckpoint(f"{path} is not valid JSON ({e}); restore it from a copy") from e


def _robot_entry(policy: VLAPolicy, name: str) -> dict[str, Any]:
    adapter = policy.adapters[name]
    return {"state_dim": adapter.state_dim, "action_dim": adapter.action_dim, "cameras": adapter.cameras,
            "image_layers": adapter.image_layers is not None,
            "trunk_rank": adapter.trunk_update.rank if adapter.trunk_update is not None else 0,
            "spec_hash": robots.load(name).hash, "stats_sha256": policy.normalizer.robot_hash(name)}


def _check_robot(name: str, entry: Mapping[str, Any], normalizer: Normalizer, where: Path,
                 norm_stats: Mapping[str, Mapping[str, NormStats]] | None) -> None:
    try:
        spec = robots.load(name)
    except robots.UnknownRobot as e:
        raise CheckpointMismatch(f"{where} was trained for robot {name!r}, which is not known here ({e})") from e
    if spec.hash != entry["spec_hash"]:
        raise CheckpointMismatch(f"{where}: the RobotSpec of {name} changed since training (hash {entry['spec_hash']} "
                                 f"then, {spec.hash} now); restore {spec.root / 'robot.toml'} or retrain its adapter")
    if name not in normalizer.stats or normalizer.robot_hash(name) != entry["stats_sha256"]:
        raise CheckpointMismatch(f"{where}: normalization statistics of {name} do not match their recorded sha256; "
                                 "the statistics file was edited or replaced")
    if norm_stats is not None and name in norm_stats:
        given = Normalizer({name: norm_stats[name]}, normalizer.mode).robot_hash(name)
        if given != entry["stats_sha256"]:
            raise CheckpointMismatch(f"{where}: the statistics given for {name} differ from those the policy was "
                                     "trained with; use the checkpoint's statistics (norm_stats.json)")


def _add_robot(policy: VLAPolicy, name: str, entry: Mapping[str, Any]) -> RobotAdapter:
    """The adapter a manifest entry describes (entries written before adapters could carry
    image layers or a trunk update have neither)."""
    return policy.add_robot(name, entry["state_dim"], entry["action_dim"], entry["cameras"],
                            entry.get("image_layers", False), entry.get("trunk_rank", 0))


def save_checkpoint(policy: VLAPolicy, path: str | os.PathLike) -> Path:
    """Write `policy` to the directory `path` (created; existing files replaced, manifest last)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    tmp = path / (WEIGHTS + ".tmp")
    safetensors.torch.save_file(tensors, str(tmp))
    os.replace(tmp, path / WEIGHTS)
    _write_json(path / CONFIG, policy.config.to_dict())
    _write_json(path / STATS, policy.normalizer.to_dict())
    _write_json(path / MANIFEST, {
        "format": FORMAT, "chunk": policy.config.chunk, "weights_sha256": _sha256(path / WEIGHTS),
        "encoders": {"language": policy.language.identity, "image": image_encoder_identity(policy.config)},
        "robots": {name: _robot_entry(policy, name) for name in policy.adapters.names},
    })
    return path


def _load_tensors(path: Path, sha256: str) -> dict[str, Any]:
    if not path.is_file():
        raise CorruptCheckpoint(f"{path} is missing")
    if _sha256(path) != sha256:
        raise CorruptCheckpoint(f"{path} does not match its recorded sha256: the weights were altered or truncated")
    try:
        return safetensors.torch.load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CorruptCheckpoint(f"{path} cannot be read as safetensors ({e})") from e


def load_checkpoint(path: str | os.PathLike, robots_needed: Sequence[str] = (),
                    norm_stats: Mapping[str, Mapping[str, NormStats]] | None = None,
                    language: LanguageEncoder | None = None) -> VLAPolicy:
    """Read a checkpoint directory (and its adapter-only finetunes) into a VLAPolicy (eval mode).

    Args:
        robots_needed: robots the caller will run; each must have an adapter.
        norm_stats: statistics the caller's data uses (e.g. `PooledDataset.norm_stats`);
            they must equal the checkpoint's for every robot both know.
        language: the sentence encoder to use (a fresh one by default).
    """
    path = Path(path)
    if not path.is_dir():
        raise CorruptCheckpoint(f"no checkpoint directory at {path}")
    manifest = _read_json(path / MANIFEST)
    if manifest.get("format") != FORMAT:
        raise CheckpointMismatch(f"{path} has checkpoint format {manifest.get('format')}, this code reads {FORMAT}")
    config = PolicyConfig.from_dict(_read_json(path / CONFIG))
    normalizer = Normalizer.from_dict(_read_json(path / STATS))
    language = language if language is not None else LanguageEncoder()
    if manifest["encoders"]["language"] != language.identity:
        raise CheckpointMismatch(f"{path} was trained with language encoder {manifest['encoders']['language']}, "
                                 f"this one is {language.identity}; install that version")
    if manifest["chunk"] != config.chunk:
        raise CorruptCheckpoint(f"{path}: manifest chunk {manifest['chunk']} differs from config chunk {config.chunk}")
    policy = VLAPolicy(config, language, normalizer)
    for name, entry in manifest["robots"].items():
        _check_robot(name, entry, normalizer, path, norm_stats)
        _add_robot(policy, name, entry)
    try:
        policy.load_state_dict(_load_tensors(path / WEIGHTS, manifest["weights_sha256"]), strict=True)
    except RuntimeError as e:
        raise CheckpointMismatch(f"{path}: weights do not fit the config and robots of the manifest ({e})") from e
    for meta in sorted((path / ADAPTERS).glob("*.json")):
        load_adapter(policy, path, meta.stem, norm_stats)
    missing = [r for r in robots_needed if r not in policy.adapters.names]
    if missing:
        raise CheckpointMismatch(f"{path} has no adapter for {missing}; it knows {policy.adapters.names}. "
                                 "Finetune one with `embodied finetune --adapter-only`")
    return policy.eval()


def save_adapter(policy: VLAPolicy, robot: str, base: str | os.PathLike) -> Path:
    """Write robot `robot`'s adapter (and statistics) next to the base checkpoint `base`."""
    base = Path(base)
    base_sha = _read_json(base / MANIFEST)["weights_sha256"]
    folder = base / ADAPTERS
    folder.mkdir(exist_ok=True)
    weights = folder / f"{robot}.safetensors"
    tmp = folder / f"{robot}.safetensors.tmp"
    safetensors.torch.save_file(policy.adapters.adapter_state_dict(robot), str(tmp))
    os.replace(tmp, weights)
    _write_json(folder / f"{robot}.json", {
        "format": FORMAT, "base_weights_sha256": base_sha, "weights_sha256": _sha256(weights),
        "robot": _robot_entry(policy, robot), "norm_stats": policy.normalizer.robot_dict(robot)})
    return weights


def load_adapter(policy: VLAPolicy, base: str | os.PathLike, robot: str,
                 norm_stats: Mapping[str, Mapping[str, NormStats]] | None = None) -> None:
    """Add the adapter-only finetune of `robot` stored next to `base` to `policy` (loaded from `base`)."""
    base = Path(base)
    meta = _read_json(base / ADAPTERS / f"{robot}.json")
    if meta["base_weights_sha256"] != _read_json(base / MANIFEST)["weights_sha256"]:
        raise CheckpointMismatch(f"adapter {robot} in {base / ADAPTERS} was trained on other base weights")
    stats = {k: NormStats.from_dict(v) for k, v in meta["norm_stats"].items()}
    entry = meta["robot"]
    _check_robot(robot, entry, Normalizer({robot: stats}, policy.normalizer.mode), base / ADAPTERS, norm_stats)
    policy.normalizer.set(robot, stats)
    adapter = _add_robot(policy, robot, entry)
    tensors = _load_tensors(base / ADAPTERS / f"{robot}.safetensors", meta["weights_sha256"])
    try:
        adapter.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointMismatch(f"adapter {robot}: weights do not fit this policy's config ({e})") from e
