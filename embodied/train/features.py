"""Frozen backbone features of every training frame, computed once, kept on disk.

A policy whose image encoder reads a frozen pretrained backbone (`PolicyConfig.image_backbone`)
gets the same features for a frame at every step. Training therefore encodes each frame of each
camera once, keeps the feature maps in memory (float16), and hands them to the policy with every
batch as `image_features`; per step only the FiLM layers above the backbone run. Frames are
encoded as the dataset serves them (resized where robots differ), so the dataset must not
augment images: an augmented frame's features would be those of one random draw for the whole
run (`build_dataset(..., augment=False)`).

Encoding is most of a short run's cost on a CPU (about 10 minutes for the pooled 4 arms x 3
tasks stores on 2 cores), and experiments train many runs over the same frames: other seeds,
longer runs, specialists on subsets. `FeatureCache` keeps each batch's features on disk, named
by a digest of the backbone's weights and the batch's pixels, so a later run reads them back and
anything that changes a frame (its store, its resize) or the backbone finds nothing stale.
Batches never straddle two sources, so a source's batches are the same in every mixture.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from embodied.data.collate import Collate
from embodied.data.loader import PooledDataset
from embodied.data.transforms import ImageAugment
from embodied.errors import DataError
from embodied.files import save_array
from embodied.policy.encoders import ImageEncoder
from embodied.train.loop import Batches

log = logging.getLogger(__name__)


class FeatureCache:
    """Backbone features of batches of frames in `folder`, one float16 .npy file per batch.

    A file's name is the SHA-256 of the backbone's weights (buffers included) and of the batch's
    pixels and shape. Files are written whole (temporary file, then rename), so processes sharing
    the folder (torchrun ranks, runs side by side) never read half a file; an unreadable file is
    encoded again, and a folder that cannot be written to costs the speed-up, not the run.
    """

    def __init__(self, folder: str | Path, backbone: nn.Module):
        self.folder = Path(folder)
        digest = hashlib.sha256()
        for name, tensor in sorted(backbone.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self._weights = digest.digest()
        self.hits = self.misses = 0
        self.writable = True  # False after a failed write: warn once, then only encode

    def path(self, pixels: torch.Tensor) -> Path:
        """Where the features of `pixels` (uint8[N, h, w, 3]) are kept."""
        digest = hashlib.sha256(self._weights)
        digest.update(repr(tuple(pixels.shape)).encode())
        digest.update(pixels.contiguous().numpy().tobytes())
        return self.folder / f"{digest.hexdigest()[:40]}.npy"

    def features(self, pixels: torch.Tensor, encode: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """float16 features of `pixels`: read from the folder, or `encode(pixels)` and kept."""
        path = self.path(pixels)
        try:
            cached = torch.from_numpy(np.load(path))
            if cached.dtype == torch.float16 and len(cached) == len(pixels):
                self.hits += 1
                return cached
            log.warning("cached features %s hold %s %s for %d frames: encoding again", path,
                        tuple(cached.shape), cached.dtype, len(pixels))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except (OSError, ValueError, EOFError) as e:
            log.warning("cached features %s are unreadable (%s): encoding again", path, e)
        self.misses += 1
        features = encode(pixels).to("cpu", torch.float16)
        if self.writable:
            self._keep(path, features)
        return features

    def _keep(self, path: Path, features: torch.Tensor) -> None:
        try:
            save_array(path, features.numpy())
        except OSError as e:
            self.writable = False
            log.warning("cannot keep backbone features in %s (%s): this run encodes every frame without keeping "
                        "them; free space there or pass another --feature-cache folder", self.folder, e)


class FrameFeatures:
    """The backbone features of every frame of `dataset`, for the cameras each frame has.

    A robot fills only some of the pooled camera slots (two of four for the pooled arms), so
    the table keeps one row per (frame, present camera): `table` is float16[R, C, h, w] and
    `rows[i, k]` the row of frame i's slot-k camera (-1: the robot has no camera there).
    Indexing (`features[index]`) gives float16[B, K, C, h, w] with zeros for absent slots,
    what the policy reads (it masks them by `camera_mask`).

    Args:
        dataset: the training frames (without image augmentation).
        encoder: the policy's image encoder; its `backbone` must be set.
        batch_size: frames encoded at once.
        device: where the backbone runs (the table stays on the CPU).
        progress: show a progress bar (the pooled stores take minutes on a 2-core CPU, before
            the first training step).
        cache: where features are read from and kept (None: encode every frame).
    """

    def __init__(self, dataset: PooledDataset, encoder: ImageEncoder, batch_size: int = 256, device: str = "cpu",
                 progress: bool = False, cache: FeatureCache | None = None):
        if encoder.backbone is None:
            raise DataError("cached image features need a policy with a frozen backbone (image_backbone); "
                            "a trainable stem reads the pixels themselves")
        if any(isinstance(t, ImageAugment) for t in dataset.transform.transforms):
            raise DataError("the dataset augments images, so a frame's backbone features change every draw and "
                            "cannot be cached; build it with augment=False")
        t0 = time.perf_counter()
        collate, self.slots = Collate(tuple(dataset.camera_slots)), list(dataset.camera_slots)
        self.rows = _rows(dataset)
        table: torch.Tensor | None = None
        bar = tqdm(total=len(dataset), desc="backbone features", unit="frame", disable=not progress)

        def encode(pixels: torch.Tensor) -> torch.Tensor:
            return encoder.features(pixels.to(device)).to("cpu", torch.float16)

        for start, stop in _batches(dataset.offsets.tolist(), batch_size):
            batch = collate([dataset[i] for i in range(start, stop)])
            present = batch["camera_mask"].nonzero(as_tuple=True)
            pixels = batch["images"][present]
            features = cache.features(pixels, encode) if cache is not None else encode(pixels)
            if table is None:
                table = _table(int(self.rows.max()) + 1, features.shape[1:], len(dataset), len(self.slots))
            table[self.rows[start:stop][present]] = features
            bar.update(stop - start)
        bar.close()
        self.table, self.cache = table, cache
        self.seconds = time.perf_counter() - t0
        log.info("backbone features: %s", self.summary())

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        """float16[B, K, C, h, w]: the features of frames `index` (int[B]), zeros where absent."""
        rows = self.rows[index]
        out = self.table.new_zeros((*rows.shape, *self.table.shape[1:]))
        present = rows >= 0
        out[present] = self.table[rows[present]]
        return out

    def summary(self) -> dict[str, Any]:
        """What the table holds and what it cost (a run's summary reports it)."""
        return {"frames": len(self.rows), "cameras": len(self.slots), "shape": list(self.table.shape[1:]),
                "megabytes": round(self.table.numel() * 2 / 2**20, 1), "seconds": round(self.seconds, 1),
                "cache": str(self.cache.folder) if self.cache else None,
                "batches_read": self.cache.hits if self.cache else None,
                "batches_encoded": self.cache.misses if self.cache else None}

    def attach(self, batches: Batches) -> Batches:
        """`batches` with each batch's `image_features` (looked up by its `index`) added."""
        def from_step(step: int) -> Iterator[dict[str, Any]]:
            for batch in batches(step):
                if list(batch["camera_slots"]) != self.slots:
                    raise DataError(f"batch camera slots {batch['camera_slots']} differ from the cached "
                                    f"features' {self.slots}")
                yield {**batch, "image_features": self[batch["index"]]}
        return from_step


def _rows(dataset: PooledDataset) -> torch.Tensor:
    """int64[frames, slots]: each present (frame, camera)'s row in the table, -1 where absent.
    A source's frames all show its cameras; rows run source by source, slot by slot."""
    rows = torch.full((len(dataset), len(dataset.camera_slots)), -1, dtype=torch.int64)
    offsets, row = dataset.offsets.tolist(), 0
    for s, cameras in enumerate(dataset.cameras):
        lo, hi = offsets[s], offsets[s + 1]
        for slot in sorted(dataset.camera_slots.index(c) for c in cameras):
            rows[lo:hi, slot] = torch.arange(row, row + hi - lo)
            row += hi - lo
    return rows


def _batches(offsets: list[int], size: int) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges of at most `size` frames that never cross a source boundary
    (`offsets`: each source's first frame, then the total)."""
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        for start in range(lo, hi, size):
            yield start, min(start + size, hi)


def _table(rows: int, shape: tuple[int, ...], frames: int, slots: int) -> torch.Tensor:
    """Zeros float16[rows, *shape], or DataError when they would fill more than half of this
    machine's memory."""
    need = rows * math.prod(shape) * 2
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have // 2:
        raise DataError(f"cached backbone features of {frames} frames ({rows} camera images in {slots} slots) "
                        f"need {need / 2**30:.1f} GiB, more than half of this machine's {have / 2**30:.1f} GiB; "
                        "train on fewer frames or with a coarser --set backbone_stride")
    return torch.zeros(rows, *shape, dtype=torch.float16)


def batch_stream(batches: Batches, dataset: PooledDataset, encoder: ImageEncoder, device: str = "cpu",
                 progress: bool = False,
                 cache_dir: str | Path | None = None) -> tuple[Batches, dict[str, Any] | None]:
    """`batches` as the policy should see them, and the features' summary: with cached backbone
    features when its image encoder reads a frozen backbone (kept in `cache_dir` when given),
    unchanged (and None) otherwise."""
    if encoder.backbone is None:
        return batches, None
    cache = FeatureCache(cache_dir, encoder.backbone) if cache_dir is not None else None
    features = FrameFeatures(dataset, encoder, device=device, progress=progress, cache=cache)
    return features.attach(batches), features.summary()
