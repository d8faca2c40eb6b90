"""Every (robot, task) pair a run was trained on, evaluated on the same seeded episodes and
summed in one table: `embodied eval --policy runs/X --suite`.

The pairs are those `embodied train` recorded in the run's train_config.json (`pairs`: the
robot and simulated task of each imitated dataset). Each pair's report is the one `embodied
eval --robot R --task T` writes (RUN/eval/R_T_INSTRUCTIONS.json); a report already there for
the same weights, episodes and first seed is read instead of run again, so an interrupted
suite resumes and a second instruction set adds only its own episodes.

The summary holds what a pooled policy is judged by: success over all pairs (every pair has
the same episodes, so this is also the mean of the pair rates), the lowest pair, how often the
named object was the one moved, and, with both instruction sets, the held-out phrasings'
success minus the training phrasings' on the same pairs, each with its 95% interval.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError
from embodied.eval.evaluate import DEFAULT_SEED0, EvalConfig, eval_dir, evaluate_or_read, report_path, weights_sha256
from embodied.eval.stats import describe_target_color, difference_interval, wilson_interval
from sim_scenes.language import INSTRUCTION_SETS


@dataclass(frozen=True)
class SuiteConfig:
    """Args:
        policy: run folder (or one of its checkpoints) trained by `embodied train`.
        instructions: the instruction sets to evaluate every pair with ("train", "heldout").
        robots, tasks: only the pairs of these robots / tasks (empty: every pair of the run).
        episodes, workers, seed0, language_cache: as `EvalConfig`, for every pair.
    """

    policy: str
    instructions: tuple[str, ...] = ("train",)
    robots: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    episodes: int = 50
    workers: int = 2
    seed0: int = DEFAULT_SEED0
    language_cache: str | None = None
    progress: bool = True

    def __post_init__(self):
        unknown = sorted(set(self.instructions) - set(INSTRUCTION_SETS))
        if unknown or not self.instructions:
            raise ConfigError(f"instruction sets must be among {INSTRUCTION_SETS}, found {list(self.instructions)}")


def trained_pairs(ckpt: Path) -> list[tuple[str, str]]:
    """The (robot, task) pairs the run of checkpoint `ckpt` imitated, in training order."""
    config = ckpt.parent / "train_config.json"
    pairs = json.loads(config.read_text()).get("pairs") if config.is_file() else None
    if pairs is None:
        raise ConfigError(f"{ckpt} has no record of the robots and tasks it was trained on ({config} with `pairs`, "
                          "written by `embodied train` since 2026-12); evaluate its pairs one at a time with "
                          "`embodied eval --robot R --task T`")
    return [(robot, task) for robot, task in pairs]


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    wins, episodes = sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows)
    named, moved = sum(r["named"] for r in rows), sum(r["manipulated"] for r in rows)
    lowest = min(rows, key=lambda r: r["successes"] / r["episodes"])
    split = [r.get("by_target_color") for r in rows]  # None in reports written before the split existed
    by_color = None if None in split else {key: {n: sum(s[key][n] for s in split) for n in ("successes", "episodes")}
                                           for key in ("shared", "distinct")}
    return {"successes": wins, "episodes": episodes, "rate": wins / episodes,
            "ci95": list(wilson_interval(wins, episodes)),
            "lowest": {k: lowest[k] for k in ("robot", "task", "successes", "episodes")},
            "named_object": {"named": named, "manipulated": moved, "of_manipulated": named / moved if moved else None,
                             "ci95": list(wilson_interval(named, moved))},
            "by_target_color": by_color}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`totals` per instruction set of the pair rows (robot, task, instructions, successes,
    episodes, named, manipulated, and by_target_color where the report has it); with both sets,
    `heldout_minus_train` over all their pairs."""
    totals = {i: _total([r for r in rows if r["instructions"] == i])
              for i in dict.fromkeys(r["instructions"] for r in rows)}
    if not set(INSTRUCTION_SETS) <= set(totals):
        return {"totals": totals}
    (s1, n1), (s2, n2) = ((totals[i]["successes"], totals[i]["episodes"]) for i in ("heldout", "train"))
    return {"totals": totals, "heldout_minus_train": {"difference": s1 / n1 - s2 / n2,
                                                      "ci95": list(difference_interval(s1, n1, s2, n2))}}


def run_suite(cfg: SuiteConfig) -> dict[str, Any]:
    """Evaluate (or read) every selected pair with every instruction set; returns the summary,
    also written to RUN/eval/suite_INSTRUCTIONS[_TASKS][_ROBOTS].json."""
    from embodied.train.rundir import resolve_policy

    ckpt = resolve_policy(cfg.policy)
    trained = trained_pairs(ckpt)
    pairs = [(r, t) for r, t in trained if (not cfg.robots or r in cfg.robots) and (not cfg.tasks or t in cfg.tasks)]
    if not pairs:
        raise ConfigError(f"no pair of {ckpt} is among robots {list(cfg.robots) or 'any'} and tasks "
                          f"{list(cfg.tasks) or 'any'}; it was trained on {trained}")
    sha = weights_sha256(ckpt)
    rows = []
    for instructions in cfg.instructions:
        for robot, task in pairs:
            report = evaluate_or_read(EvalConfig(str(ckpt), robot, task, cfg.episodes, cfg.workers, instructions,
                                                 cfg.seed0, language_cache=cfg.language_cache, progress=cfg.progress),
                                      report_path(ckpt, robot, task, instructions))
            g = report["named_object_rate"]
            rows.append({"robot": robot, "task": task, "instructions": instructions,
                         "successes": report["successes"], "episodes": report["episodes"],
                         "rate": report["success_rate"], "ci95": report["ci95"],
                         "named": g["named"], "manipulated": g["manipulated"],
                         "by_target_color": report.get("by_target_color")})
            if cfg.progress:
                print(f"suite: {robot}/{task} ({instructions}): {report['successes']}/{report['episodes']}",
                      file=sys.stderr, flush=True)
    summary = {"policy": str(ckpt), "weights_sha256": sha, "episodes": cfg.episodes, "seed0": cfg.seed0,
               "pairs": rows, **summarize(rows)}
    name = "_".join(("suite", *cfg.instructions, *cfg.tasks, *cfg.robots))
    out = eval_dir(ckpt) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    summary["out"] = str(out)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A markdown table (a row per task and instruction set, a column per robot, successes of
    episodes) and the totals below it."""
    rows = summary["pairs"]
    robots = list(dict.fromkeys(r["robot"] for r in rows))
    lines = ["| | " + " | ".join(robots) + " | all |", "|---" * (len(robots) + 2) + "|"]
    for key in dict.fromkeys((r["task"], r["instructions"]) for r in rows):
        cells = {r["robot"]: r for r in rows if (r["task"], r["instructions"]) == key}
        wins, n = sum(c["successes"] for c in cells.values()), sum(c["episodes"] for c in cells.values())
        label = key[0] + (", held-out phrasings" if key[1] == "heldout" else "")
        lines.append(f"| {label} | " + " | ".join(f"{cells[r]['successes']}/{cells[r]['episodes']}" if r in cells
                                                   else "-" for r in robots) + f" | {wins}/{n} |")
    for instructions, t in summary["totals"].items():
        lo, hi = t["ci95"]
        low, g = t["lowest"], t["named_object"]
        named = "-" if g["of_manipulated"] is None else f"{100 * g['of_manipulated']:.1f}%"
        lines.append(f"{instructions} phrasings: {t['successes']}/{t['episodes']} = {100 * t['rate']:.1f}% "
                     f"[{100 * lo:.1f}, {100 * hi:.1f}]; lowest pair {low['robot']}/{low['task']} "
                     f"{low['successes']}/{low['episodes']}; named object {g['named']}/{g['manipulated']} = {named} "
                     "of the episodes that moved one")
        color = describe_target_color(t["by_target_color"])
        if color:
            lines.append(f"  {color}")
    if "heldout_minus_train" in summary:
        d = summary["heldout_minus_train"]
        lines.append(f"held-out minus training phrasings: {100 * d['difference']:+.1f} points "
                     f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]")
    return "\n".join(lines)
