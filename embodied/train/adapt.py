"""`finetune(policy, robot, cfg)`: adapter-only adaptation of a trained policy to a new arm.

The new robot gets a fresh adapter sized from its RobotSpec and its data's normalization
statistics; everything shared (image encoder, trunk, heads, other adapters) is frozen. With
`image_layers` (the default), the adapter also gets its own copy of the image encoder's
spatial layers (`embodied.policy.encoders.ImageLayers`), started from the shared ones and
trained with it: a new arm's cameras see the scene from elsewhere, and the shared layers
did not find the held-out ur5e's cubes (docs/policy_experiments.md). With `trunk_rank` r > 0
(by default 16) the adapter also gets its own rank-r update of the trunk's weight matrices
(`embodied.policy.lowrank.LowRankUpdate`), zero at first: through the frozen trunk alone a new
arm's adapter underfits its actions.
Only the adapter is saved, as `adapters/<robot>.safetensors` (+ `.json`) next to the base
checkpoint (`embodied.policy.checkpoint.save_adapter`); `load_checkpoint(base)` then loads
base + adapter. Loss curves go to `cfg.out`. A finetune is not resumable (it restarts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import robots
from embodied.policy import LanguageEncoder, load_checkpoint, save_adapter
from embodied.train.config import FINETUNE_TRUNK_RANK, TrainConfig
from embodied.train.data import BatchStream, augments, build_dataset, check_sources, open_sources
from embodied.train.distributed import Dist
from embodied.train.features import batch_stream
from embodied.train.loop import Fit, fit
from embodied.train.rundir import resolve_policy


def finetune(policy_path: str | Path, robot: str, cfg: TrainConfig, image_layers: bool = True,
             trunk_rank: int = FINETUNE_TRUNK_RANK) -> dict[str, Any]:
    """Train robot `robot`'s adapter (with its own image layers when `image_layers`, and its own
    rank-`trunk_rank` update of the trunk when it is > 0) on `cfg.data` with the rest of the
    policy frozen."""
    base = resolve_policy(policy_path)
    sources = open_sources(cfg.data, cfg.recipe, demos=cfg.demos).sources
    check_sources(sources, only_robot=robot)
    policy = load_checkpoint(base, language=LanguageEncoder(cache_dir=cfg.cache_dir))
    dataset = build_dataset(sources, policy.config.chunk, policy.normalizer.mode, augments(cfg, policy.config), cfg.seed,
                            cfg.state_noise, relative_actions=policy.config.relative_actions)
    spec = robots.load(robot)
    torch.manual_seed(cfg.seed)
    adapter = policy.add_robot(robot, len(spec.state_names), spec.action_dim, [c.name for c in spec.cameras],
                               image_layers, trunk_rank)
    policy.normalizer.set(robot, dataset.norm_stats[robot])
    params = policy.adapter_only(robot)
    stream = BatchStream(dataset, cfg.batch_size, None, cfg.workers, cfg.seed, preload=cfg.preload)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)

    def save(kind: str, state: dict[str, Any]) -> str:
        return str(save_adapter(policy, robot, base)) if kind == "last" else ""

    batches, features = batch_stream(stream.from_step, dataset, policy.image, progress=cfg.progress,
                                     cache_dir=cfg.feature_dir)
    summary = fit(Fit(policy, params, batches, [robot], cfg, Dist(), run, save))
    saved = base / "adapters" / f"{robot}.safetensors"
    own, update = adapter.image_layers, adapter.trunk_update
    return {**summary, "robot": robot, "base": str(base), "adapter": str(saved),
            "adapter_bytes": saved.stat().st_size, "base_bytes": (base / "weights.safetensors").stat().st_size,
            "trainable_parameters": sum(p.numel() for p in params),
            "image_layer_parameters": sum(p.numel() for p in own.parameters()) if own is not None else 0,
            "trunk_rank": trunk_rank,
            "trunk_update_parameters": sum(p.numel() for p in update.parameters()) if update is not None else 0,
            "parameters": sum(p.numel() for p in policy.parameters()),
            **({"backbone_features": features} if features else {})}
