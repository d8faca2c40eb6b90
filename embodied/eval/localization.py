"""How well a grounding policy's keypoints find the instruction's objects, frame by frame.

A policy trained with `grounding_weight > 0` learns to put image keypoint 0 on the named
target and keypoint 1 on the goal (`embodied.policy.model.grounding_loss`). This measures it
on any dataset whose frames carry role-pixel labels (`embodied simgen` records them): on the
training data, and on demonstrations of new seeds, the gap says whether the image side found
the named objects or memorised the scenes.

    python -m embodied.eval.localization --policy runs/X --data data/koch_push_new

Prints one JSON object: per camera and role, the frames measured, the mean, median and 90th
percentile distance [px] (Euclidean, at the camera's resolution) and the fraction of frames
within `--within` pixels. The tail matters: on new scenes a grounding policy's median error may
stay near its training error while a tenth of the frames miss by several object widths.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

import numpy as np

from embodied.data.collate import Collate
from embodied.data.episode import ROLES
from embodied.errors import DataError


def keypoint_errors(policy: Any, dataset: Any, stride: int = 1, batch_size: int = 64) -> dict[str, np.ndarray]:
    """"camera/role" -> float[N, 2] offsets |x|, |y| [normalized image units] between the
    policy's keypoint and the label, over every `stride`-th frame of `dataset` (a
    PooledDataset) with that label."""
    if not policy.config.image_keypoints >= len(ROLES):
        raise DataError(f"the policy has {policy.config.image_keypoints} image keypoints; localization measures "
                        f"keypoints 0-{len(ROLES) - 1}, which a policy trained with grounding_weight > 0 has")
    collate = Collate(tuple(dataset.camera_slots))
    frames = range(0, len(dataset), stride)
    errors: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(frames), batch_size):
        batch = collate([dataset[i] for i in frames[start:start + batch_size]])
        if "role_pixels" not in batch:
            continue
        keypoints, present = policy.locate(batch)
        labels = batch["role_pixels"][tuple(i.cpu() for i in present)]
        offsets = (keypoints[:, :len(ROLES)].cpu() - labels).abs().numpy()  # [N, roles, 2], NaN: no label
        for n, slot in enumerate(present[1].tolist()):
            for r, role in enumerate(ROLES):
                if np.isfinite(offsets[n, r]).all():
                    errors.setdefault(f"{dataset.camera_slots[slot]}/{role}", []).append(offsets[n, r])
    if not errors:
        raise DataError("no frame of the dataset carries role-pixel labels; generate it with `embodied simgen`, "
                        "which records them")
    return {key: np.stack(values) for key, values in errors.items()}


def summarize(errors: dict[str, np.ndarray], sizes: dict[str, tuple[int, int]], within: float) -> dict[str, Any]:
    """Per "camera/role": frames, mean, median and 90th-percentile distance [px] and the fraction
    within `within` px, the normalized offsets scaled by each camera's (height, width) (`sizes`)."""
    out = {}
    for key, offsets in sorted(errors.items()):
        h, w = sizes[key.split("/")[0]]
        px = np.hypot(offsets[:, 0] * w / 2.0, offsets[:, 1] * h / 2.0)
        out[key] = {"frames": len(px), "mean_px": round(float(px.mean()), 2),
                    "median_px": round(float(np.median(px)), 2), "p90_px": round(float(np.percentile(px, 90)), 2),
                    f"within_{within:g}px": round(float((px <= within).mean()), 3)}
    return out


def measure(policy_path: str, data: Sequence[str], stride: int = 1, within: float = 4.0,
            language_cache: str | None = None) -> dict[str, Any]:
    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.data import build_dataset, check_sources, open_sources
    from embodied.train.rundir import resolve_policy

    sources, _, normalization, _ = open_sources(data)
    check_sources(sources)
    dataset = build_dataset(sources, 1, normalization, augment=False)
    policy = load_checkpoint(resolve_policy(policy_path), robots_needed=sorted(set(dataset.robots)),
                             language=LanguageEncoder(cache_dir=language_cache))
    sizes = {cam: tuple(hw) for s in sources for cam, hw in s.cameras.items()}
    return {"policy": policy_path, "data": list(data),
            "localization": summarize(keypoint_errors(policy, dataset, stride), sizes, within)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m embodied.eval.localization", description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="run folder or checkpoint")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="datasets with role-pixel labels")
    p.add_argument("--stride", type=int, default=1, help="measure every N-th frame")
    p.add_argument("--within", type=float, default=4.0, help="report the fraction of frames within this many pixels")
    p.add_argument("--cache", help="instruction-embedding cache folder")
    args = p.parse_args(argv)
    from embodied.train.config import default_language_cache

    result = measure(args.policy, args.data, args.stride, args.within, args.cache or str(default_language_cache()))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
