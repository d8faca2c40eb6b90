"""TrainConfig: one frozen description of a training (or adapter finetuning) run."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError


FINETUNE_LR = 3e-4
"""Peak learning rate of an adapter-only finetune (`embodied finetune`, the new-arm protocol's
adapters): lower than a full run's 1e-3. ur5e's lift adapter on a `small_pretrained` base that held
ur5e out, 20 demonstrations, 3000 steps, one seed each: 3/50 at 1e-3, 10/50 at 3e-4, 5/50 at 1e-4
(docs/policy_experiments.md, "The new-arm curve on `small_pretrained`")."""

FINETUNE_TRUNK_RANK = 16
"""Rank of the low-rank update of the trunk an adapter-only finetune gives the new robot's adapter
(`embodied.policy.lowrank.LowRankUpdate`; 0: none, the frozen trunk). The same ur5e adapters at
3e-4 (rank 0 -> 16): 10/50 -> 13/50 at 20 demonstrations and 20/50 -> 25/50 at 50, one seed each
(docs/policy_experiments.md, "A new arm's own low-rank update of the trunk")."""


def _cache_root() -> Path:
    return Path(os.environ.get("EMBODIED_CACHE") or Path.home() / ".cache" / "embodied")


def default_language_cache() -> Path:
    """Disk cache of instruction embeddings: $EMBODIED_CACHE/language or ~/.cache/embodied/language."""
    return _cache_root() / "language"


def default_feature_cache() -> Path:
    """Disk cache of frozen-backbone features of training frames: $EMBODIED_CACHE/features or
    ~/.cache/embodied/features (about 1 GB for the pooled 4 arms x 3 tasks stores)."""
    return _cache_root() / "features"


@dataclass(frozen=True)
class TrainConfig:
    """Args:
        data: dataset folders (episode stores or LeRobot datasets); or
        recipe: a mixture recipe (TOML) instead of `data`.
        grounding_data: with `data`, datasets whose frames train only the grounding loss
            (images and role-pixel labels; their actions are not imitated): simulation labels
            scenes for free, demonstrations of the actions are the scarce part. Needs a policy
            with grounding_weight > 0. In a recipe: `imitate = false` on an entry.
        demos: with `data`, train on only the first N episodes of each dataset (not of the
            grounding data): data-scaling curves from one recorded dataset. In a recipe:
            `episodes = N` on an entry.
        out: run folder (checkpoints, curves, train state).
        preset: policy preset; head: "l1" or "flow" (None: the preset's).
        policy_overrides: fields of the preset to override, e.g. {"film_queries": 0}.
        steps: total batches of the run [steps]; batch_size: samples per batch per process.
        lr: peak learning rate (AdamW; 1e-3: the pooled 4 arms x 3 tasks run of 8000 steps
            succeeded in 221/600 episodes at 1e-3 against 125/600 at 3e-4,
            docs/policy_experiments.md); warmup: linear warm-up [steps]; schedule: "cosine"
            (down to lr / 10 at `steps`) or "constant".
        weight_decay, grad_clip: AdamW decay; gradient norm clip.
        ema: decay of the weight average the checkpoints hold (`embodied.train.ema`; the
            optimizer steps raw weights, kept in the train state); 0: checkpoints hold the raw
            weights.
        workers: DataLoader worker processes (per process).
        seed: seeds model init, data order and augmentation.
        ckpt_every: save `last` (and `best` when the smoothed loss improved) every N steps.
        log_every: rows of the loss CSV every N steps.
        resume: True: must resume; False: refuse a run folder with a checkpoint; None: resume if one exists.
        max_bad_batches: abort after this many consecutive batches with NaN/inf.
        diverge_factor, diverge_after: stop when the smoothed loss exceeds diverge_factor x its
            best value, once diverge_after steps are done.
        augment: random image shift and colour jitter.
        state_noise: std of Gaussian noise on the normalized proprioception of training
            samples (`embodied.data.transforms.StateNoise`); 0: none.
        preload: decode every image into memory once and draw frames independently (better
            mixed batches, no decoding per step; needs frames x cameras x h x w x 3 bytes of RAM).
        language_cache: folder of cached instruction embeddings (None: default_language_cache()).
        feature_cache: folder of cached backbone features of training frames, for policies with a
            frozen image backbone (None: default_feature_cache()); `embodied.train.features`.
        progress: show a tqdm bar (rank 0).
    """

    out: str
    data: tuple[str, ...] = ()
    recipe: str | None = None
    grounding_data: tuple[str, ...] = ()
    demos: int | None = None
    preset: str = "small"
    head: str | None = None
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 100
    schedule: str = "cosine"
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema: float = 0.0
    workers: int = 2
    seed: int = 0
    ckpt_every: int = 250
    log_every: int = 10
    resume: bool | None = None
    max_bad_batches: int = 5
    diverge_factor: float = 10.0
    diverge_after: int = 50
    augment: bool = True
    state_noise: float = 0.0
    preload: bool = False
    language_cache: str | None = None
    feature_cache: str | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in train_config.json, not interpreted

    def __post_init__(self):
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        object.__setattr__(self, "grounding_data", tuple(str(d) for d in self.grounding_data))
        if bool(self.data) == bool(self.recipe):
            raise ConfigError("give the training data either as dataset folders (--data DIR ...) or as a recipe "
                              f"(--recipe datasets/NAME.toml), not {'both' if self.data else 'neither'}")
        if self.grounding_data and self.recipe:
            raise ConfigError("--grounding-data goes with --data; in a recipe, mark grounding datasets with "
                              "imitate = false")
        if self.demos is not None and self.recipe:
            raise ConfigError("--demos goes with --data; in a recipe, set episodes = N on its entries")
        if self.demos is not None and (isinstance(self.demos, bool) or not isinstance(self.demos, int) or self.demos < 1):
            raise ConfigError(f"training config: demos must be a positive integer (the first N episodes), found {self.demos!r}")
        ints = {k: getattr(self, k) for k in ("steps", "batch_size", "ckpt_every", "log_every", "max_bad_batches")}
        bad = {k: v for k, v in ints.items() if not isinstance(v, int) or v < 1}
        if bad or self.workers < 0 or self.warmup < 0 or self.diverge_after < 0:
            raise ConfigError(f"training config: {bad or 'workers, warmup, diverge_after'} must be positive integers")
        if not self.state_noise >= 0:
            raise ConfigError(f"training config: state_noise must be >= 0 (normalized units), found {self.state_noise}")
        if isinstance(self.ema, bool) or not (isinstance(self.ema, (int, float)) and 0.0 <= self.ema < 1.0):
            raise ConfigError(f"training config: ema is the weight average's decay, in [0, 1) (0: off), found {self.ema!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"training config: schedule must be 'cosine' or 'constant', found {self.schedule!r}")
        if not (self.lr > 0 and self.grad_clip > 0 and self.diverge_factor > 1 and self.weight_decay >= 0):
            raise ConfigError(f"training config: need lr > 0, grad_clip > 0, diverge_factor > 1, weight_decay >= 0; "
                              f"found {self.lr}, {self.grad_clip}, {self.diverge_factor}, {self.weight_decay}")

    @property
    def cache_dir(self) -> Path:
        return Path(self.language_cache) if self.language_cache else default_language_cache()

    @property
    def feature_dir(self) -> Path:
        return Path(self.feature_cache) if self.feature_cache else default_feature_cache()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # fields that must agree between a run and its resumption (steps may grow; others are free)
    RESUME_KEYS = ("data", "recipe", "grounding_data", "demos", "preset", "head", "policy_overrides", "batch_size", "seed")
