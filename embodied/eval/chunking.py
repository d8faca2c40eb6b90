"""Executing action chunks: open loop for a number of steps, or temporally ensembled (numpy only).

    open_loop  query the policy, execute the first `execute` actions of the chunk, query again
    ensemble   query every step; the action of step t averages every chunk that covers t with
               weights exp(-k i), i = 0 for the oldest (ACT's temporal ensembling)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from embodied.errors import ConfigError

MODES = ("open_loop", "ensemble")


@dataclass(frozen=True)
class Execution:
    """How chunks become actions. execute: actions run per chunk in open loop (0: the whole
    chunk); k: ensemble weight decay per chunk of age."""

    mode: str = "open_loop"
    execute: int = 0
    k: float = 0.01

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"unknown chunk execution {self.mode!r}; use one of {MODES}")
        if self.execute < 0 or self.k < 0:
            raise ConfigError(f"execute and k must be >= 0, found {self.execute}, {self.k}")


class ChunkExecutor:
    """`needs_chunk()` -> `push(chunk)` -> `next()`, once per control step."""

    def __init__(self, execution: Execution, horizon: int):
        self.ex, self.horizon = execution, horizon
        self.steps = execution.execute if 0 < execution.execute <= horizon else horizon
        self.queue: deque[np.ndarray] = deque()
        self.chunks: deque[tuple[int, np.ndarray]] = deque()  # (start step, chunk) for ensembling
        self.t = 0

    def needs_chunk(self) -> bool:
        return self.ex.mode == "ensemble" or not self.queue

    def push(self, chunk: np.ndarray) -> None:
        if self.ex.mode == "ensemble":
            self.chunks.append((self.t, np.asarray(chunk)))
            while self.chunks and self.chunks[0][0] + len(self.chunks[0][1]) <= self.t:
                self.chunks.popleft()
        else:
            self.queue.extend(np.asarray(chunk)[: self.steps])

    def next(self) -> np.ndarray:
        """The action of this step (advances time)."""
        if self.ex.mode == "ensemble":
            live = [(c[self.t - s]) for s, c in self.chunks if s <= self.t < s + len(c)]
            w = np.exp(-self.ex.k * np.arange(len(live)))
            action = (w[:, None] * np.stack(live)).sum(0) / w.sum()
        else:
            action = self.queue.popleft()
        self.t += 1
        return action
