"""What a deployment did: one `EpisodeResult` per episode, and the run's summary.

Timing is reported as the control period error |t[k+1] - t[k] - 1 / control_hz| of the
tick starts [ms], the number that says whether the loop kept the robot's rate.
"""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# why an episode ended (EpisodeResult.stopped) when it ends the whole run
ENDS_RUN = frozenset({"camera", "interrupted"})


@dataclass
class EpisodeResult:
    """One episode of a deployment.

    Attributes:
        index, seed: its place in the run, and the emulation seed (-1 on hardware).
        instruction: what the policy was told.
        steps: control ticks run.
        success: the task's predicate at the end (emulation), None where unknown.
        stopped: why it ended: "time", "success", "torque_off", "camera" or "interrupted";
            `detail` says more.
        faults: monitor events per kind (raised, occurred, clipped).
        reactions: ticks per applied reaction.
        limit_violations: targets written beyond a joint range (the monitor's clip makes it 0).
        starved: ticks without a planned action (inference slower than the plan).
        period_error_ms: |tick period - nominal| of each tick after the first [ms].
        inference_ms: duration of each inference [ms].
        injected: faults the emulator injected per kind (emulation with a fault profile).
    """

    index: int
    seed: int
    instruction: str
    steps: int
    success: bool | None
    stopped: str
    faults: dict[str, int]
    reactions: dict[str, int]
    limit_violations: int
    starved: int = 0
    detail: str = ""
    injected: dict[str, int] = field(default_factory=dict)
    period_error_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    inference_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "seed": self.seed, "instruction": self.instruction, "steps": self.steps,
                "success": self.success, "stopped": self.stopped, "detail": self.detail, "faults": self.faults,
                "reactions": self.reactions, "limit_violations": self.limit_violations, "starved": self.starved,
                "injected": self.injected,
                "period_error_ms": stats_ms(self.period_error_ms), "inference_ms": stats_ms(self.inference_ms)}


def stats_ms(values: np.ndarray) -> dict[str, float]:
    """p50, p99 and max of durations [ms] (empty: {})."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return {}
    return {"p50": round(float(np.percentile(v, 50)), 3), "p99": round(float(np.percentile(v, 99)), 3),
            "max": round(float(v.max()), 3)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process [MiB] (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def summarize(results: Sequence[EpisodeResult], **context: Any) -> dict[str, Any]:
    """The run's summary: `context` (robot, bundle, scheduler ...) and totals over `results`."""
    known = [r.success for r in results if r.success is not None]
    faults: Counter[str] = Counter()
    reactions: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    for r in results:
        faults.update(r.faults)
        reactions.update(r.reactions)
        injected.update(r.injected)
    cat = (lambda key: np.concatenate([getattr(r, key) for r in results]) if results else np.zeros(0))
    return {**context, "episodes": len(results), "successes": sum(known) if known else None,
            "steps": sum(r.steps for r in results), "stopped": results[-1].stopped if results else None,
            "faults": dict(sorted(faults.items())), "reactions": dict(sorted(reactions.items())),
            "injected": dict(sorted(injected.items())),
            "limit_violations": sum(r.limit_violations for r in results),
            "starved": sum(r.starved for r in results),
            "period_error_ms": stats_ms(cat("period_error_ms")), "inference_ms": stats_ms(cat("inference_ms")),
            "peak_rss_mb": peak_rss_mb(), "per_episode": [r.to_dict() for r in results]}


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for a terminal."""
    period, infer = summary["period_error_ms"], summary["inference_ms"]
    successes = "" if summary["successes"] is None else f", {summary['successes']} succeeded"
    lines = [f"deployed {summary.get('bundle', '')} on {summary.get('robot', '')}: {summary['episodes']} episode(s), "
             f"{summary['steps']} ticks{successes}; stopped: {summary['stopped']}",
             f"  faults: {summary['faults'] or 'none'}",
             f"  limit violations: {summary['limit_violations']}, starved ticks: {summary['starved']}",
             f"  period error [ms]: p50 {period.get('p50', '-')}, p99 {period.get('p99', '-')}, "
             f"max {period.get('max', '-')}",
             f"  inference [ms]: p50 {infer.get('p50', '-')}, p99 {infer.get('p99', '-')}, max {infer.get('max', '-')}",
             f"  peak RSS: {summary['peak_rss_mb']} MiB"]
    if summary.get("blackbox"):
        lines.append(f"  black box: {summary['blackbox']}")
    if summary.get("record"):
        lines.append(f"  recorded: {summary['record']}")
    return "\n".join(lines)
