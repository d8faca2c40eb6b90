"""Frozen backbone features of every training frame, computed once per run.

A policy whose image encoder reads a frozen pretrained backbone (`PolicyConfig.image_backbone`)
gets the same features for a frame at every step. Training therefore encodes each frame of each
camera once, keeps the feature maps in memory (float16), and hands them to the policy with every
batch as `image_features`; per step only the FiLM layers above the backbone run. Frames are
encoded as the dataset serves them (resized where robots differ), so the dataset must not
augment images: an augmented frame's features would be those of one random draw for the whole
run (`build_dataset(..., augment=False)`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Iterator

import torch
from tqdm import tqdm

from embodied.data.collate import Collate
from embodied.data.loader import PooledDataset
from embodied.data.transforms import ImageAugment
from embodied.errors import DataError
from embodied.policy.encoders import ImageEncoder
from embodied.train.loop import Batches

log = logging.getLogger(__name__)


class FrameFeatures:
    """The backbone features of every frame of `dataset`: float16[N, K, C, h, w] (K camera
    slots; zeros where a robot has no camera in a slot).

    Args:
        dataset: the training frames (without image augmentation).
        encoder: the policy's image encoder; its `backbone` must be set.
        batch_size: frames encoded at once.
        device: where the backbone runs (the table stays on the CPU).
        progress: show a progress bar (the pooled stores take minutes on a 2-core CPU, before
            the first training step).
    """

    def __init__(self, dataset: PooledDataset, encoder: ImageEncoder, batch_size: int = 256, device: str = "cpu",
                 progress: bool = False):
        if encoder.backbone is None:
            raise DataError("cached image features need a policy with a frozen backbone (image_backbone); "
                            "a trainable stem reads the pixels themselves")
        if any(isinstance(t, ImageAugment) for t in dataset.transform.transforms):
            raise DataError("the dataset augments images, so a frame's backbone features change every draw and "
                            "cannot be cached; build it with augment=False")
        t0 = time.perf_counter()
        collate, self.slots = Collate(tuple(dataset.camera_slots)), list(dataset.camera_slots)
        table: torch.Tensor | None = None
        bar = tqdm(total=len(dataset), desc="backbone features", unit="frame", disable=not progress)
        for start in range(0, len(dataset), batch_size):
            stop = min(start + batch_size, len(dataset))
            batch = collate([dataset[i] for i in range(start, stop)])
            present = batch["camera_mask"].nonzero(as_tuple=True)
            features = encoder.features(batch["images"][present].to(device)).to("cpu", torch.float16)
            if table is None:
                table = _table(len(dataset), len(self.slots), features.shape[1:])
            table[start:stop][present] = features
            bar.update(stop - start)
        bar.close()
        self.table = table
        self.seconds = time.perf_counter() - t0
        log.info("backbone features of %d frames x %d cameras: %s float16, %.0f MB, %.1f s", len(dataset),
                 len(self.slots), tuple(table.shape[2:]), table.numel() * 2 / 2**20, self.seconds)

    def attach(self, batches: Batches) -> Batches:
        """`batches` with each batch's `image_features` (looked up by its `index`) added."""
        def from_step(step: int) -> Iterator[dict[str, Any]]:
            for batch in batches(step):
                if list(batch["camera_slots"]) != self.slots:
                    raise DataError(f"batch camera slots {batch['camera_slots']} differ from the cached "
                                    f"features' {self.slots}")
                yield {**batch, "image_features": self.table[batch["index"]]}
        return from_step


def _table(frames: int, slots: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros float16[frames, slots, *shape], or DataError when they would fill more than half
    of this machine's memory."""
    need = frames * slots * math.prod(shape) * 2
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have // 2:
        raise DataError(f"cached backbone features of {frames} frames x {slots} cameras need {need / 2**30:.1f} GiB, "
                        f"more than half of this machine's {have / 2**30:.1f} GiB; train on fewer frames or with "
                        "a coarser --set backbone_stride")
    return torch.zeros(frames, slots, *shape, dtype=torch.float16)


def batch_stream(batches: Batches, dataset: PooledDataset, encoder: ImageEncoder, device: str = "cpu",
                 progress: bool = False) -> Batches:
    """`batches` as the policy should see them: with cached backbone features when its image
    encoder reads a frozen backbone, unchanged otherwise."""
    if encoder.backbone is None:
        return batches
    return FrameFeatures(dataset, encoder, device=device, progress=progress).attach(batches)
