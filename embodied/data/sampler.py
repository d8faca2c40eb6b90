"""Samplers over a PooledDataset that draw datasets by mixture weight.

`MixtureSampler` (per sample, like torch's WeightedRandomSampler): dataset by weight,
then a uniform frame of it. Simple, but every sample touches a different image chunk.

`UniformBatchSampler` (yields batches): MixtureSampler's keys, `batch_size` at a time; for
preloaded datasets (`PooledDataset.preload`), where a read costs nothing.

`ChunkBatchSampler` (yields batches; pass it as `batch_sampler=`): the source of each
sample is still drawn by weight, but frames come from a window of a few image chunks,
shuffled together, before the sampler moves to the next window. Each decoded chunk then
serves ~all its frames from the cache. It keeps one independent stream per DataLoader
worker (batch k goes to worker k % num_workers, as DataLoader assigns them) and gives
each stream its own chunks, so no chunk is decoded by two workers.

Both yield `(index, seed)` keys; the seed drives augmentation, so a run is reproducible
from the sampler's seed whatever the number of workers. Weights are probabilities per
sample, independent of dataset size.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from embodied.data.loader import PooledDataset
from embodied.errors import DataError


def _probabilities(weights: Sequence[float] | None, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise DataError(f"need {n} non-negative mixture weights with a positive sum, found {weights}")
    return w / w.sum()


class MixtureSampler(torch.utils.data.Sampler):
    """`num_samples` keys per epoch (default: len(dataset)), drawn with replacement."""

    def __init__(self, dataset: PooledDataset, weights: Sequence[float] | None = None,
                 num_samples: int | None = None, seed: int = 0):
        self.dataset, self.p = dataset, _probabilities(weights, len(dataset.sources))
        self.num_samples, self.seed, self.epoch = int(num_samples or len(dataset)), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        src = rng.choice(len(self.p), size=self.num_samples, p=self.p)
        sizes = np.array([self.dataset.source_frames(i) for i in range(len(self.p))])
        frames = (rng.random(self.num_samples) * sizes[src]).astype(np.int64)
        index = self.dataset.offsets[src] + frames
        seeds = rng.integers(0, 2**63 - 1, size=self.num_samples)
        return iter(zip(index.tolist(), seeds.tolist()))


class UniformBatchSampler(torch.utils.data.Sampler):
    """Batches of independent `(index, seed)` keys; `num_samples // batch_size` batches per epoch."""

    def __init__(self, dataset: PooledDataset, batch_size: int, weights: Sequence[float] | None = None,
                 num_samples: int | None = None, seed: int = 0):
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, found {batch_size}")
        self.keys, self.batch_size = MixtureSampler(dataset, weights, num_samples, seed), batch_size

    def set_epoch(self, epoch: int) -> None:
        self.keys.set_epoch(epoch)

    def __len__(self) -> int:
        return max(1, len(self.keys) // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        keys = list(self.keys)
        for b in range(len(self)):
            yield keys[b * self.batch_size:(b + 1) * self.batch_size]


class _Stream:
    """Frames of one worker's share of chunks, window by window, per source."""

    def __init__(self, dataset: PooledDataset, rng: np.random.Generator, worker: int, workers: int, window: int):
        self.ds, self.rng, self.worker, self.workers, self.window = dataset, rng, worker, workers, window
        n = len(dataset.sources)
        self.order: list[list[int]] = [[] for _ in range(n)]  # chunks still to visit
        self.pending: list[np.ndarray] = [np.empty(0, np.int64) for _ in range(n)]  # shuffled frames of the window

    def _refill_order(self, s: int) -> None:
        """The stream's own chunks (chunk c belongs to stream c % workers), reshuffled."""
        size, frames = self.ds.chunk_size(s), self.ds.source_frames(s)
        chunks = np.arange(-(-frames // size))
        mine = chunks[chunks % self.workers == self.worker]
        self.order[s] = list(self.rng.permutation(mine if len(mine) else chunks))  # tiny sources: share

    def take(self, s: int, k: int) -> np.ndarray:
        out = []
        while k > 0:
            if not len(self.pending[s]):
                size, frames = self.ds.chunk_size(s), self.ds.source_frames(s)
                window = []
                for _ in range(self.window):
                    if not self.order[s]:
                        if window:
                            break
                        self._refill_order(s)
                    c = self.order[s].pop()
                    window.append(np.arange(c * size, min((c + 1) * size, frames)))
                self.pending[s] = self.rng.permutation(np.concatenate(window))
            got, self.pending[s] = self.pending[s][:k], self.pending[s][k:]
            out.append(got)
            k -= len(got)
        return self.ds.offsets[s] + np.concatenate(out) if out else np.empty(0, np.int64)


class ChunkBatchSampler(torch.utils.data.Sampler):
    """Batches of `(index, seed)` keys; `num_samples // batch_size` batches per epoch.

    Args:
        window: image chunks shuffled together per source and stream; larger mixes
            better and needs a larger cache (window x cameras x chunk bytes per source).
        num_workers: the DataLoader's num_workers (0 counts as 1).
    """

    def __init__(self, dataset: PooledDataset, batch_size: int, weights: Sequence[float] | None = None,
                 num_samples: int | None = None, window: int = 4, num_workers: int = 0, seed: int = 0):
        if batch_size < 1 or window < 1:
            raise DataError(f"batch_size and window must be >= 1, found {batch_size}, {window}")
        self.dataset, self.p = dataset, _probabilities(weights, len(dataset.sources))
        self.batch_size, self.window, self.workers = batch_size, window, max(1, num_workers)
        self.num_samples, self.seed, self.epoch = int(num_samples or len(dataset)), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, self.num_samples // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        streams = [_Stream(self.dataset, np.random.default_rng([self.seed, self.epoch, w + 1]), w, self.workers,
                           self.window) for w in range(self.workers)]
        for b in range(len(self)):
            stream = streams[b % self.workers]
            counts = rng.multinomial(self.batch_size, self.p)
            index = np.concatenate([stream.take(s, int(k)) for s, k in enumerate(counts) if k])
            index = index[rng.permutation(len(index))]
            seeds = rng.integers(0, 2**63 - 1, size=len(index))
            yield list(zip(index.tolist(), seeds.tolist()))
