"""`train(cfg)`: pooled training of one VLAPolicy over many robots, resumable, one process
or many (torchrun).

The policy gets one adapter per robot found in the data, sized from the RobotSpec; the
normalization statistics of the datasets go into the policy (and so into every checkpoint).
A run folder with a checkpoint is resumed (optimizer, schedule, step, RNG, loss curves);
its saved TrainConfig must agree with the command on data, preset, head, batch size and seed,
and the policy keeps the architecture saved in its checkpoint (a preset may have changed since).
"""

from __future__ import annotations

import json
import logging
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

import torch

from embodied.errors import ConfigError
from embodied.policy import LanguageEncoder, PolicyConfig, VLAPolicy, preset, save_checkpoint
from embodied.policy.checkpoint import CONFIG as POLICY_CONFIG
from embodied.policy.normalizer import Normalizer
from embodied.train import distributed
from embodied.train.config import TrainConfig
from embodied.train.data import BatchStream, augments, build_dataset, check_sources, open_sources, sim_pairs
from embodied.train.errors import ResumeMismatch
from embodied.train.features import batch_stream
from embodied.train.loop import Fit, fit
from embodied.train.rundir import BEST, CONFIG, LAST, STATE, checkpoint_dir, load_state, write_atomic

log = logging.getLogger(__name__)


def _resume_state(cfg: TrainConfig, run: Path) -> dict[str, Any] | None:
    found = checkpoint_dir(run, LAST)
    if found is None:
        if cfg.resume:
            raise ResumeMismatch(f"--resume: {run} has no checkpoint to resume from ({run / LAST} is missing)")
        return None
    if cfg.resume is False:
        raise ResumeMismatch(f"{run} already holds a run (checkpoint {found}); resume it (drop --no-resume) "
                             "or choose another --out")
    state = load_state(found)
    saved = state["config"]
    # a key the run was saved without (it predates the key) holds the key's default
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(TrainConfig)
                if f.name in TrainConfig.RESUME_KEYS}
    saved = {k: saved.get(k, defaults[k]) for k in TrainConfig.RESUME_KEYS}
    diff = {k: (saved[k], getattr(cfg, k)) for k in TrainConfig.RESUME_KEYS
            if _norm(saved[k]) != _norm(getattr(cfg, k))}
    if diff:
        raise ResumeMismatch(f"{run} was trained with other settings {{key: (saved, given)}}: {diff}; "
                             "resume with the same ones or choose another --out")
    if state["step"] >= cfg.steps:
        log.warning("%s is already at step %d of %d; raise --steps to train on", run, state["step"], cfg.steps)
    return state


def _check_stats(normalizer: Normalizer, ckpt: Path) -> None:
    manifest = json.loads((ckpt / "manifest.json").read_text())
    changed = [r for r, e in manifest["robots"].items()
               if r in normalizer.stats and normalizer.robot_hash(r) != e["stats_sha256"]]
    if changed:
        raise ResumeMismatch(f"the datasets of {changed} changed since {ckpt} was saved (their statistics differ); "
                             "resuming would renormalize mid-run: train into a new --out instead")


def _norm(v: Any) -> Any:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else v


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) a training run; returns a summary (steps, losses, skipped batches, seconds)."""
    d = distributed.setup()
    try:
        return _train(cfg, d)
    finally:
        distributed.teardown(d)


def _train(cfg: TrainConfig, d: distributed.Dist) -> dict[str, Any]:
    run = Path(cfg.out)
    sources, weights, normalization, imitate = open_sources(cfg.data, cfg.recipe, cfg.grounding_data, cfg.demos)
    robot_names = check_sources(sources)
    config = preset(cfg.preset, **cfg.policy_overrides, **({"head": cfg.head} if cfg.head else {}))
    if not all(imitate) and not config.grounding_weight:
        raise ConfigError("grounding data (--grounding-data, or imitate = false in the recipe) trains only the "
                          f"grounding loss, which preset {config.name!r} as configured does not have; use "
                          "--preset small (or --set image_keypoints=16 grounding_weight=1), or leave the grounding "
                          "data out")
    cfg = replace(cfg, head=config.head)
    state = _resume_state(cfg, run)
    if state is not None:
        config = PolicyConfig.from_dict(json.loads((checkpoint_dir(run, LAST) / POLICY_CONFIG).read_text()))
    dataset = build_dataset(sources, config.chunk, normalization, augments(cfg, config), cfg.seed, cfg.state_noise,
                            imitate, config.relative_actions)
    language = LanguageEncoder(cache_dir=cfg.cache_dir)
    torch.manual_seed(cfg.seed)  # identical initial weights on every process
    policy = VLAPolicy.for_robots(config, robot_names, language, Normalizer(dataset.norm_stats, normalization))
    if state is not None:
        from safetensors.torch import load_file

        _check_stats(policy.normalizer, checkpoint_dir(run, LAST))
        policy.load_state_dict(load_file(str(checkpoint_dir(run, LAST) / "weights.safetensors")))
    policy.to(d.device)
    model: torch.nn.Module = policy
    if d.active:
        model = torch.nn.parallel.DistributedDataParallel(
            policy, device_ids=[d.local_rank] if d.device.startswith("cuda") else None,
            find_unused_parameters=True)  # a batch need not hold every robot
    torch.manual_seed(cfg.seed * 1000 + d.rank + (state["step"] if state else 0))  # noise streams per process
    stream = BatchStream(dataset, cfg.batch_size, weights, cfg.workers, cfg.seed, d.rank, cfg.preload)
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
        (run / CONFIG).write_text(json.dumps({**cfg.to_dict(), "policy": config.to_dict(), "robots": robot_names,
                                              "pairs": sim_pairs(sources, imitate), "frames": len(dataset),
                                              "processes": d.world}, indent=2))

    def save(kind: str, train_state: dict[str, Any]) -> str:
        def write(tmp: Path) -> None:
            save_checkpoint(policy, tmp)
            if kind == LAST:
                torch.save(train_state, tmp / STATE)
        return str(write_atomic(run / (LAST if kind == "last" else BEST), write))

    params = [p for p in policy.parameters() if p.requires_grad]
    batches, features = batch_stream(stream.from_step, dataset, policy.image, d.device,
                                     progress=cfg.progress and d.main, cache_dir=cfg.feature_dir)
    summary = fit(Fit(model, params, batches, robot_names, cfg, d, run, save), state)
    return {**summary, "robots": robot_names, "frames": len(dataset), "out": str(run),
            "parameters": sum(p.numel() for p in policy.parameters()),
            **({"backbone_features": features} if features else {})}
