"""Collate samples of different robots into one batch, with explicit masks.

Batch (B samples, K camera slots, H chunk length)::

    robot, instruction     list[str]                 per sample
    cameras                list[list[str]]           per sample, its robot's cameras
    camera_slots           list[str]                 slot names (empty for positional slots)
    state                  float32[B, n]             padded with 0 ...
    state_mask             bool[B, n]                ... where False (dimension absent)
    actions                float32[B, H, m]          padded with 0 ...
    action_mask            bool[B, m]                ... where False (dimension absent)
    action_valid           bool[B, H]                False past the episode end
    images                 uint8[B, K, h, w, 3]      black ...
    camera_mask            bool[B, K]                ... where False (camera absent)
    role_pixels            float32[B, K, 2, 2]       where the target and goal are per camera slot,
                                                     NaN where unknown (only when a sample has labels)
    image_shift            float32[B, K, 2]          how far augmentation moved each image's content
                                                     (normalized image coordinates; 0 where not
                                                     moved; only when a sample was augmented)
    source, episode, frame, index, seed   int64[B]

Padded values carry no meaning: consumers must read the masks (a missing action
dimension means "hold", never zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from embodied.data.episode import ROLES
from embodied.errors import SchemaMismatch


@dataclass(frozen=True)
class Collate:
    """Args:
        camera_slots: slot names (a sample's camera goes to the slot of its name), or an
            int K (a sample's k-th camera goes to slot k), or None (names, in order of
            first appearance in the batch; pass `dataset.camera_slots` for fixed slots).
        state_dim, action_dim: pad to at least this many dimensions (fixed shapes).
    """

    camera_slots: tuple[str, ...] | int | None = None
    state_dim: int = 0
    action_dim: int = 0

    def _slots(self, samples: Sequence[dict]) -> tuple[list[str], int]:
        if isinstance(self.camera_slots, int):
            k = max(self.camera_slots, *(len(s["cameras"]) for s in samples))
            if k > self.camera_slots:
                raise SchemaMismatch(f"a sample has {k} cameras, more than the {self.camera_slots} camera slots")
            return [], k
        names = list(self.camera_slots) if self.camera_slots is not None else \
            list(dict.fromkeys(c for s in samples for c in s["cameras"]))
        for s in samples:
            extra = [c for c in s["cameras"] if c not in names]
            if extra:
                raise SchemaMismatch(f"{s['robot']} cameras {extra} have no slot; slots are {names}")
        return names, len(names)

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        b = len(samples)
        names, k = self._slots(samples)
        n = max(self.state_dim, *(len(s["state"]) for s in samples))
        m = max(self.action_dim, *(s["actions"].shape[-1] for s in samples))
        h = samples[0]["actions"].shape[0]
        shapes = {img.shape for s in samples for img in s["images"].values()}
        if len(shapes) > 1:
            raise SchemaMismatch(f"camera images of this batch differ in shape {sorted(shapes)}; add "
                                 "ResizeImages(height, width) to the dataset's transforms")
        ih, iw, ic = next(iter(shapes)) if shapes else (0, 0, 3)
        state = np.zeros((b, n), np.float32)
        state_mask = np.zeros((b, n), bool)
        actions = np.zeros((b, h, m), np.float32)
        action_mask = np.zeros((b, m), bool)
        images = np.zeros((b, k, ih, iw, ic), np.uint8)
        camera_mask = np.zeros((b, k), bool)
        labelled = any("role_pixels" in s for s in samples)
        role_pixels = np.full((b, k, len(ROLES), 2), np.nan, np.float32) if labelled else None
        shifted = any("image_shift" in s for s in samples)
        image_shift = np.zeros((b, k, 2), np.float32)
        for i, s in enumerate(samples):
            d, a = len(s["state"]), s["actions"].shape[-1]
            if s["actions"].shape[0] != h:
                raise SchemaMismatch(f"action chunks of one batch differ in length: {h} and {s['actions'].shape[0]}")
            state[i, :d], state_mask[i, :d] = s["state"], True
            actions[i, :, :a], action_mask[i, :a] = s["actions"], True
            for j, cam in enumerate(s["cameras"]):
                slot = names.index(cam) if names else j
                images[i, slot] = s["images"][cam]
                camera_mask[i, slot] = True
                if labelled and cam in s.get("role_pixels", {}):
                    role_pixels[i, slot] = s["role_pixels"][cam]
                if cam in s.get("image_shift", {}):
                    image_shift[i, slot] = s["image_shift"][cam]
        return {
            "robot": [s["robot"] for s in samples],
            "instruction": [s["instruction"] for s in samples],
            "cameras": [list(s["cameras"]) for s in samples],
            "camera_slots": names,
            "state": torch.from_numpy(state), "state_mask": torch.from_numpy(state_mask),
            "actions": torch.from_numpy(actions), "action_mask": torch.from_numpy(action_mask),
            "action_valid": torch.from_numpy(np.stack([s["action_valid"] for s in samples])),
            "images": torch.from_numpy(images), "camera_mask": torch.from_numpy(camera_mask),
            **({"role_pixels": torch.from_numpy(role_pixels)} if labelled else {}),
            **({"image_shift": torch.from_numpy(image_shift)} if shifted else {}),
            **{key: torch.tensor([int(s[key]) for s in samples], dtype=torch.int64)
               for key in ("source", "episode", "frame", "index", "seed") if key in samples[0]},
        }
