"""The simulated-success gate of an int8 export.

A relative error on held-out inputs says how far int8 actions are from fp32 ones, not
whether the robot still succeeds: small errors can compound over a closed-loop episode.
The gate runs the fp32 and the int8 model of a finished bundle through the same seeded
simulated episodes (`embodied.eval` with `PolicyEngine`, the deploy runtime) and refuses
the int8 model when its success rate is more than `max_drop_points` percentage points
below fp32's. The instructions of the gate's seeds are exported with the bundle (the
runtime can only serve instructions it holds embeddings for).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError
from embodied.eval.evaluate import DEFAULT_SEED0

MAX_DROP_POINTS = 3.0


@dataclass(frozen=True)
class SimGate:
    """Args:
        task: the simulated task (e.g. "lift"); episodes: seeds seed0 ... seed0 + episodes - 1.
        workers: rollout processes (one ONNX Runtime thread each).
        instructions: "train" or "heldout" phrasings.
        max_drop_points: largest accepted fp32 - int8 success difference [percentage points].
    """

    task: str
    episodes: int = 50
    seed0: int = DEFAULT_SEED0
    workers: int = 2
    instructions: str = "train"
    max_drop_points: float = MAX_DROP_POINTS
    progress: bool = True

    def __post_init__(self):
        if self.episodes < 1 or self.workers < 1:
            raise ConfigError(f"the sim gate needs --gate-episodes >= 1 and --workers >= 1, found {self.episodes}, "
                              f"{self.workers}")

    def instruction_texts(self, robot: str) -> list[str]:
        """The instruction of every gate episode (to be exported with the bundle)."""
        from embodied.eval.evaluate import episode_instructions

        return episode_instructions(robot, self.task, self.seed0, self.episodes, self.instructions)


def _rate(report: dict[str, Any]) -> dict[str, Any]:
    return {"success_rate": report["success_rate"], "successes": report["successes"], "ci95": report["ci95"],
            "infer_ms_mean": report["infer_ms_mean"]}


def run_gate(bundle: Path, robot: str, gate: SimGate) -> dict[str, Any]:
    """Evaluate the bundle's fp32 and int8 models on the gate's seeds; the manifest's `sim_gate`
    record (`forced` is left False: whether to override a failure is the caller's decision)."""
    from embodied.eval import EvalConfig, evaluate

    reports = {p: evaluate(EvalConfig(str(bundle), robot, gate.task, gate.episodes, gate.workers, gate.instructions,
                                      gate.seed0, progress=gate.progress, bundle=True, precision=p))
               for p in ("fp32", "int8")}
    fp32, int8 = reports["fp32"], reports["int8"]
    drop = 100.0 * (fp32["success_rate"] - int8["success_rate"])
    differ = [a["seed"] for a, b in zip(fp32["results"], int8["results"]) if a["success"] != b["success"]]
    return {"task": gate.task, "episodes": gate.episodes, "instructions": gate.instructions,
            "seeds": {"first": gate.seed0, "last": gate.seed0 + gate.episodes - 1},
            "fp32": _rate(fp32), "int8": _rate(int8), "drop_points": round(drop, 3),
            "max_drop_points": gate.max_drop_points, "passed": drop <= gate.max_drop_points,
            "seeds_that_differ": differ, "forced": False}


def refusal(result: dict[str, Any], robot: str, out: Path) -> str:
    """The ExportError message of a failed gate: both rates, the episodes, and the ways out."""
    f, i, s = result["fp32"], result["int8"], result["seeds"]
    return (f"{robot}: int8 succeeds in {i['successes']}/{result['episodes']} ({100 * i['success_rate']:.1f}%) of the "
            f"{result['task']} episodes (seeds {s['first']}..{s['last']}), fp32 in {f['successes']}/"
            f"{result['episodes']} ({100 * f['success_rate']:.1f}%): {result['drop_points']:.1f} points lower, past "
            f"the {result['max_drop_points']:g}-point bar. Nothing was written to {out} (a bundle already there is "
            "untouched). Use --force to write it anyway (the drop is recorded in the manifest), try "
            "--calibration-data DIR for static int8 recipes, or export fp32 only (without --quantize)")
