"""Executing action chunks (numpy only, no torch).

Building block (also used by `embodied.eval`, which re-exports it):

    ChunkExecutor  open_loop: query the policy, execute the first `execute` actions, query again
                   ensemble:  query every step; the action of step t averages every chunk that
                              covers t with weights exp(-k i), i = 0 for the oldest (ACT)

Control-loop schedulers, one `step(obs) -> action float32[m]` per control tick:

    SyncScheduler      open loop; the tick that needs a chunk waits for inference
    EnsembleScheduler  inference every tick, temporally ensembled (waits every tick)
    AsyncScheduler     the next chunk is inferred in a background thread while the current
                       one executes; on arrival it is blended into what remains of the old
                       chunk. A tick never waits for inference (except the very first, which
                       has nothing to execute); if no chunk is left, the last action is held.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from embodied.errors import ConfigError
from embodied.policy.io import ActionChunk, Observation

MODES = ("open_loop", "ensemble")
Infer = Callable[[Observation], ActionChunk]


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


class Scheduler(Protocol):
    """One action per control tick."""

    def step(self, obs: Observation) -> np.ndarray:
        """The action float32[m] (robot units) to send this tick."""
        ...

    def reset(self) -> None:
        """Forget every chunk (new episode)."""
        ...

    def close(self) -> None:
        ...


class _Executing:
    """A ChunkExecutor driven by a blocking `infer` (SyncScheduler, EnsembleScheduler)."""

    def __init__(self, infer: Infer, execution: Execution, horizon: int):
        self.infer, self.execution, self.horizon = infer, execution, horizon
        self.reset()

    def step(self, obs: Observation) -> np.ndarray:
        if self.executor.needs_chunk():
            self.executor.push(self.infer(obs).actions)
        return np.asarray(self.executor.next(), np.float32)

    def reset(self) -> None:
        self.executor = ChunkExecutor(self.execution, self.horizon)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyncScheduler(_Executing):
    """Open loop: infer, run the first `execute` actions (0: all H), infer again."""

    def __init__(self, infer: Infer, horizon: int, execute: int = 0):
        super().__init__(infer, Execution("open_loop", execute), horizon)


class EnsembleScheduler(_Executing):
    """Infer every tick; average the chunks covering this tick with weights exp(-k age_rank)."""

    def __init__(self, infer: Infer, horizon: int, k: float = 0.01):
        super().__init__(infer, Execution("ensemble", k=k), horizon)


class AsyncScheduler:
    """Overlaps inference of the next chunk with execution of the current one.

    When at most `trigger` actions of the plan remain, the tick's observation goes to a
    background thread. Its chunk starts at the tick of that observation; when it arrives
    (some ticks later), the steps already passed are dropped and the rest is blended into
    the remaining plan: weight of the new chunk (i + 1) / (blend + 1) at its i-th overlapping
    step, 1 after `blend` steps and past the old plan's end.

    Args:
        infer: `PolicyEngine.infer` (releases the GIL while ONNX Runtime runs).
        horizon: chunk length H [ticks].
        trigger: request the next chunk when this many actions remain (default H // 2).
        blend: ticks over which a new chunk takes over from the old (default 2).
    """

    def __init__(self, infer: Infer, horizon: int, trigger: int | None = None, blend: int = 2):
        if horizon < 1 or blend < 0 or (trigger is not None and not 0 <= trigger < horizon):
            raise ConfigError(f"AsyncScheduler needs horizon >= 1, 0 <= trigger < horizon and blend >= 0; found "
                              f"{horizon}, {trigger}, {blend}")
        self.infer, self.horizon, self.blend = infer, horizon, blend
        self.trigger = horizon // 2 if trigger is None else trigger
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._request: tuple[int, int, Observation] | None = None  # (generation, tick, obs)
        self._result: tuple[int, int, np.ndarray] | BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="chunk-inference", daemon=True)
        self._thread.start()
        self._generation = 0
        self.reset()

    # --- background thread ------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._wake:
                while self._request is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                generation, tick, obs = self._request  # type: ignore[misc]
                self._request = None
            try:
                result: tuple[int, int, np.ndarray] | BaseException = (generation, tick, self.infer(obs).actions)
            except BaseException as e:  # handed to the control thread at its next tick
                result = e
            with self._wake:
                if generation == self._generation:
                    self._result = result

    # --- control thread ---------------------------------------------------------------------
    def _blend(self, start: int, chunk: np.ndarray) -> None:
        new = np.asarray(chunk, np.float32)[self.t - start:]
        if not len(new):
            self.stale += 1
            return
        old = self.plan
        n = min(len(old), len(new))
        w = np.minimum(1.0, (np.arange(n) + 1.0) / (self.blend + 1.0))[:, None]
        merged = new.copy()
        merged[:n] = (1.0 - w) * old[:n] + w * new[:n]
        self.plan = merged

    def _submit(self, obs: Observation) -> None:
        with self._wake:
            self._request = (self._generation, self.t, obs)
            self._wake.notify()
        self.in_flight = True

    def step(self, obs: Observation) -> np.ndarray:
        """The action float32[m] of this tick. Never waits for inference once the first chunk
        has arrived; re-raises an exception of the background inference."""
        if self.last is None and not self.in_flight:  # first tick of an episode: nothing to run yet
            self.plan = np.asarray(self.infer(obs).actions, np.float32)
        with self._lock:
            result, self._result = self._result, None
        if isinstance(result, BaseException):
            self.in_flight = False
            raise result
        if result is not None:
            self.in_flight = False
            self._blend(result[1], result[2])
        if len(self.plan) <= self.trigger and not self.in_flight:
            self._submit(obs)
        if len(self.plan):
            self.last, self.plan = self.plan[0], self.plan[1:]
        else:
            self.starved += 1  # inference slower than the plan: hold the last action
        self.t += 1
        return np.array(self.last, np.float32)

    def reset(self) -> None:
        """Forget the plan; a chunk still being inferred is discarded when it arrives."""
        with self._lock:
            self._generation += 1
            self._request, self._result = None, None
        self.plan = np.zeros((0, 0), np.float32)
        self.last: np.ndarray | None = None
        self.in_flight = False
        self.t, self.starved, self.stale = 0, 0, 0

    def close(self) -> None:
        """Stop the background thread (waits for an inference in flight to end)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def __enter__(self) -> "AsyncScheduler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
