"""Training data: open the datasets of a run, check them, and stream batches resumably.

Checks (clear errors before any training): no datasets, a dataset without committed
episodes, a robot unknown here, a dataset whose state/action dimensions or cameras do not
fit its robot's RobotSpec, or stores of one robot that disagree with each other.

The batch stream is a ChunkBatchSampler epoch after epoch (frames from windows of image
chunks, cheap to decode), or with `preload` every image decoded into memory once and a
UniformBatchSampler (independent frames: better mixed batches, no decoding per step); the position of step s is
(epoch, batch) = divmod(s, batches_per_epoch), so a resumed run continues with exactly the
batches the uninterrupted run would have drawn. Each process of a distributed run draws
from its own seed stream (seed, rank).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np
import torch

import robots
from embodied.data.collate import Collate
from embodied.data.loader import PooledDataset, _worker_init
from embodied.data.mixture import load_recipe, open_source
from embodied.data.sampler import ChunkBatchSampler, UniformBatchSampler
from embodied.data.source import sim_task
from embodied.data.subset import FirstEpisodes
from embodied.data.transforms import ImageAugment, ResizeImages, StateNoise
from embodied.errors import DataError, SchemaMismatch
from embodied.policy.config import PolicyConfig
from embodied.train.config import TrainConfig

log = logging.getLogger(__name__)


class TrainingData(NamedTuple):
    """The datasets of a run: `sources` (FrameSources), mixture `weights` (None: uniform over
    sources), `normalization`, and per source whether its actions are imitated (`imitate`;
    False: grounding data, its frames train only the grounding loss)."""

    sources: list[Any]
    weights: list[float] | None
    normalization: str
    imitate: list[bool]


def open_sources(data: Sequence[str] = (), recipe: str | None = None,
                 grounding_data: Sequence[str] = (), demos: int | None = None) -> TrainingData:
    """The datasets of `--data DIR... [--grounding-data DIR...] [--demos N]` or of `--recipe FILE`;
    `demos`: only the first N episodes of each `data` folder."""
    if recipe:
        r = load_recipe(recipe)
        return TrainingData(r.open_sources(), r.weights, r.normalization or "mean_std", r.imitate)
    if not data:
        raise DataError("no training data: pass one or more dataset folders (--data DIR ...) or a recipe")
    sources = []
    for d in (*data, *grounding_data):
        if not Path(d).exists():
            raise DataError(f"dataset {d} does not exist; generate one with `embodied simgen --out {d} ...`")
        sources.append(open_source(d))
    if demos is not None:
        sources[:len(data)] = [FirstEpisodes(s, demos) for s in sources[:len(data)]]
    return TrainingData(sources, None, "mean_std", [True] * len(data) + [False] * len(grounding_data))


def sim_pairs(sources: Sequence[Any], imitate: Sequence[bool]) -> list[tuple[str, str]]:
    """The (robot, simulated task) pairs the imitated datasets demonstrate, once each, in order:
    what `embodied eval --suite` evaluates. Data without a simulated task adds none."""
    pairs = ((s.robot, sim_task(s)) for s, imitated in zip(sources, imitate) if imitated)
    return list(dict.fromkeys((robot, task) for robot, task in pairs if task))


def check_sources(sources: Sequence[Any], only_robot: str | None = None) -> list[str]:
    """Validate datasets against each other and their RobotSpecs; returns the robots, in order."""
    for s in sources:
        if s.num_frames == 0:
            raise DataError(f"dataset {s.path} is empty (no committed episodes); generate or record episodes "
                            "into it, or leave it out")
        if only_robot is not None and s.robot != only_robot:
            raise SchemaMismatch(f"dataset {s.path} holds robot {s.robot!r}, but this run is for {only_robot!r}; "
                                 "pass only that robot's datasets")
        spec = robots.load(s.robot)  # UnknownRobot names the robots there are
        stats = s.stats()
        dims = {"state": len(stats["observation.state"]["mean"]), "action": len(stats["action"]["mean"])}
        want = {"state": len(spec.state_names), "action": spec.action_dim}
        if dims != want:
            raise SchemaMismatch(f"dataset {s.path} has {dims} dimensions, robot {s.robot} needs {want}; "
                                 "it was recorded for another version of the robot")
        extra = sorted(set(s.cameras) - {c.name for c in spec.cameras})
        if extra:
            raise SchemaMismatch(f"dataset {s.path} has cameras {extra} that robot {s.robot} does not have "
                                 f"({[c.name for c in spec.cameras]})")
    by_robot: dict[str, set] = {}
    for s in sources:
        by_robot.setdefault(s.robot, set()).add(tuple(sorted(s.cameras.items())))
    mixed = {r: v for r, v in by_robot.items() if len(v) > 1}
    if mixed:
        raise SchemaMismatch(f"datasets of one robot disagree on cameras or resolutions: {mixed}")
    return list(dict.fromkeys(s.robot for s in sources))


def augments(cfg: TrainConfig, policy: PolicyConfig) -> bool:
    """Whether training augments images: as `cfg.augment` asks, except over a frozen backbone,
    whose features are cached per frame (`embodied.train.features`) and so see each frame as stored."""
    if cfg.augment and policy.image_backbone != "none":
        log.info("image augmentation off: the frozen %s features are computed once per stored frame",
                 policy.image_backbone)
        return False
    return cfg.augment


def build_dataset(sources: Sequence[Any], horizon: int, normalization: str = "mean_std", augment: bool = True,
                  seed: int = 0, state_noise: float = 0.0, imitate: Sequence[bool] | None = None,
                  relative_actions: bool = False) -> PooledDataset:
    """PooledDataset over checked sources; images resized to the most common resolution when
    robots differ; `state_noise` > 0 adds `StateNoise` of that std (normalized units);
    `imitate` and `relative_actions` as in `PooledDataset`."""
    sizes = Counter(hw for s in sources for hw in s.cameras.values())
    transforms: list[Any] = [StateNoise(state_noise)] if state_noise else []
    if len(sizes) > 1:
        h, w = sizes.most_common(1)[0][0]
        transforms.append(ResizeImages(h, w))
    return PooledDataset(sources, horizon=horizon, normalization=normalization,
                         augment=ImageAugment() if augment else None, transforms=transforms, seed=seed,
                         imitate=imitate, relative_actions=relative_actions)


class _Batches(torch.utils.data.Sampler):
    """A ChunkBatchSampler epoch with its first `skip` batches dropped (the resume point)."""

    def __init__(self, inner: ChunkBatchSampler):
        self.inner, self.skip = inner, 0

    def __len__(self) -> int:
        return len(self.inner) - self.skip

    def __iter__(self):
        for i, batch in enumerate(self.inner):
            if i >= self.skip:
                yield batch


class BatchStream:
    """Endless batches of a dataset from any step on (see the module docstring).

    Args:
        weights: mixture weights per source (None: uniform over sources).
        rank: process rank (its own seed stream).
        preload: decode every image into memory first (refused when that needs more than
            half of this machine's memory) and sample frames independently.
    """

    def __init__(self, dataset: PooledDataset, batch_size: int, weights: Sequence[float] | None = None,
                 workers: int = 0, seed: int = 0, rank: int = 0, preload: bool = False):
        stream_seed = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
        if preload:
            need, have = dataset.image_bytes(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            if need > have // 2:
                raise DataError(f"--preload needs {need / 2**30:.1f} GiB for the decoded images, more than half of "
                                f"this machine's {have / 2**30:.1f} GiB; train without --preload")
            dataset.preload()
            inner = UniformBatchSampler(dataset, batch_size, weights, seed=stream_seed)
        else:
            inner = ChunkBatchSampler(dataset, batch_size, weights, num_workers=workers, seed=stream_seed)
        self.sampler = _Batches(inner)
        self.per_epoch = len(self.sampler.inner)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=workers, collate_fn=Collate(tuple(dataset.camera_slots)),
            persistent_workers=workers > 0, worker_init_fn=_worker_init)

    def from_step(self, step: int) -> Iterator[dict[str, Any]]:
        epoch, skip = divmod(step, self.per_epoch)
        while True:
            self.sampler.inner.set_epoch(epoch)
            self.sampler.skip = skip
            yield from self.loader
            epoch, skip = epoch + 1, 0
