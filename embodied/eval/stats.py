"""Success rates over seeded episodes, with Wilson 95% confidence intervals; how often the
robot manipulated the object the instruction named (`grounding`)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95%)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(s1: int, n1: int, s2: int, n2: int, z: float = 1.96) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the difference of two independent proportions
    s1/n1 - s2/n2, built from their Wilson intervals (default 95%); better than the Wald
    interval near 0 and 1, where success rates of small evaluations often are."""
    p1, p2 = (s1 / n1 if n1 else 0.0), (s2 / n2 if n2 else 0.0)
    (l1, u1), (l2, u2) = wilson_interval(s1, n1, z), wilson_interval(s2, n2, z)
    d = p1 - p2
    return (max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
            min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)))


@dataclass(frozen=True)
class SuccessRate:
    successes: int
    episodes: int

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    @staticmethod
    def total(rates: Iterable[SuccessRate]) -> SuccessRate:
        """The episodes of several rates counted together."""
        rates = list(rates)
        return SuccessRate(sum(r.successes for r in rates), sum(r.episodes for r in rates))

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{100 * self.rate:5.1f}% [{100 * lo:5.1f}, {100 * hi:5.1f}] ({self.successes}/{self.episodes})"


def success_table(results: Iterable) -> dict[tuple[str, str], SuccessRate]:
    """(robot, task) -> SuccessRate over results with .robot, .task, .success."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        c = counts[(r.robot, r.task)]
        c[0] += int(r.success)
        c[1] += 1
    return {k: SuccessRate(*v) for k, v in sorted(counts.items())}


def grounding(results: Iterable) -> dict[str, Any]:
    """How often the robot manipulated the object the instruction named, over results with
    .manipulated (a body or None) and .named_object.

    Of the episodes in which it manipulated anything (`of_manipulated`, with its 95% Wilson
    interval), which says whether the policy reads the instruction; and of all episodes
    (`of_all`), which also counts the episodes in which it moved nothing. None where there
    is no episode to count.
    """
    results = list(results)
    moved = [r for r in results if r.manipulated is not None]
    named = sum(bool(r.named_object) for r in moved)
    return {"of_manipulated": named / len(moved) if moved else None,
            "of_all": named / len(results) if results else None,
            "ci95": list(wilson_interval(named, len(moved))), "named": named, "manipulated": len(moved),
            "episodes": len(results)}


def by_target_color(results: Iterable) -> dict[str, dict[str, int]] | None:
    """Successes and episodes where another prop had the named target's colour ("shared":
    only the noun tells the two apart) and where no other prop had it ("distinct"), over
    results with .success and .target_color_shared; None when no result knows its scene."""
    known = [r for r in results if r.target_color_shared is not None]
    if not known:
        return None
    return {key: {"successes": sum(bool(r.success) for r in known if r.target_color_shared == shared),
                  "episodes": sum(r.target_color_shared == shared for r in known)}
            for key, shared in (("shared", True), ("distinct", False))}


def describe_target_color(split: dict[str, dict[str, int]] | None) -> str | None:
    """One line on `by_target_color`'s split, None when there is nothing to split (no scene
    with a shared colour, as in lift, or results that do not know their scenes)."""
    if not split or not split["shared"]["episodes"]:
        return None
    shared, distinct = split["shared"], split["distinct"]
    return (f"named object's colour shared with another prop (a bin or zone): {shared['successes']}/"
            f"{shared['episodes']} succeeded; not shared: {distinct['successes']}/{distinct['episodes']}")
