"""Normalization statistics of per-frame vectors."""

from __future__ import annotations

import numpy as np


def compute_stats(x: np.ndarray) -> dict[str, list[float]]:
    """mean, std, min, max, q01, q99 per dimension of x[N, d] (float64 arithmetic)."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return {}
    q01, q99 = np.quantile(x, [0.01, 0.99], axis=0)
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(), "max": x.max(0).tolist(),
            "q01": q01.tolist(), "q99": q99.tolist(), "count": [int(len(x))] * x.shape[1]}
