"""Stages 4-5 of `embodied demo`: int8 export through the gates, emulated deployment.

The export asks for int8 with static calibration on the robot's own demonstrations and the
simulated-success gate (`embodied.export_gate`) on the demo's task. It runs with `force` into
a scratch folder so that the gate's measurements (fp32 and int8 success, the int8 error)
come back whichever way it decides; the decision is the gate's own `passed` flags. Passed:
the candidate becomes the bundle. Refused: the refusal is reported, the candidate is
deleted, and the robot gets an fp32-only bundle; no forced int8 model is ever deployed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from embodied.demo.config import DEPLOY_SEED0, DemoConfig
from embodied.demo.records import fields, read_record, write_record
from embodied.demo.stages import DataResult, TrainResult


@dataclass
class ExportResult:
    """One robot's bundle.

    Attributes:
        precision: the model the bundle deploys: "int8" (the gates passed it) or "fp32".
        int8_passed: both gates passed the int8 model; decision: what was decided and why.
        recipe, relative_error, error_bound: the chosen int8 recipe and its error vs fp32
            on held-out dataset frames.
        gate_fp32, gate_int8: success rates of the two precisions over `gate_episodes`
            seeded episodes; drop_points: their difference, max_drop_points: the bar.
        model_sha256: sha256 of the deployed model file (later stages are keyed on it).
        instructions: those of the deployment's seeds, which the bundle serves.
    """

    robot: str
    bundle: str
    precision: str
    int8_passed: bool
    decision: str
    recipe: str
    relative_error: float
    error_bound: float
    gate_episodes: int
    gate_fp32: float
    gate_int8: float
    drop_points: float
    max_drop_points: float
    model_sha256: str
    instructions: list[str]
    skipped: bool


def _model_sha(bundle: Path, precision: str) -> str | None:
    try:
        return json.loads((bundle / "manifest.json").read_text())["models"][precision]["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def _refusals(gate: dict[str, Any]) -> list[str]:
    """Why the gates refused the int8 model (empty: passed)."""
    sim, reasons = gate["sim_gate"], []
    if not gate["passed"]:
        reasons.append(f"int8 error {gate['relative_error']:.3f} > bound {gate['bound']:g}")
    if not sim["passed"]:
        reasons.append(f"int8 {sim['drop_points']:.1f} points below fp32 in simulation (bar "
                       f"{sim['max_drop_points']:g})")
    return reasons


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop ONNX Runtime's advice to pre-process before quantizing (logged once per recipe on
    the root logger): the export measures each recipe's error instead."""
    def keep(record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname or "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def export_robot(cfg: DemoConfig, robot: str, trained: TrainResult, data: DataResult,
                 load_policy: Callable[[], Any]) -> ExportResult:
    """The robot's bundle under `cfg.bundle(robot)`: int8 when the gates pass it, else fp32.
    `load_policy()` returns the trained policy (loaded once for every robot by the caller)."""
    from embodied.eval.evaluate import episode_instructions
    from embodied.export import export_policy
    from embodied.export_gate import SimGate
    from embodied.export_int8 import Calibration

    bundle = cfg.bundle(robot)
    key = {"policy": trained.policy_id, "task": cfg.task, "gate_episodes": cfg.gate_episodes,
           "deploy_seeds": [DEPLOY_SEED0, cfg.deploy_episodes], "data": data.path}
    found = read_record(cfg.export_record(robot), key)
    if found is not None and _model_sha(bundle, found["precision"]) == found["model_sha256"]:
        return ExportResult(**(found | {"skipped": True}))
    policy = load_policy()
    # the instructions of the deployment's seeds (the gate adds its own)
    serves = episode_instructions(robot, cfg.task, DEPLOY_SEED0, cfg.deploy_episodes)
    gate = SimGate(cfg.task, cfg.gate_episodes, workers=cfg.workers, progress=cfg.progress)
    candidate = bundle.with_name(f".{robot}.int8-candidate")
    shutil.rmtree(candidate, ignore_errors=True)
    with _quiet_quantizer():
        manifest = export_policy(policy, robot, candidate, serves, quantize_int8=True, force=True,
                                 source=trained.path, calibration=Calibration(data.path), gate=gate)
    reasons = _refusals(manifest["gate"])
    if reasons:
        shutil.rmtree(candidate)
        export_policy(policy, robot, bundle, serves, source=trained.path)
    else:
        shutil.rmtree(bundle, ignore_errors=True)
        candidate.rename(bundle)
    precision = "fp32" if reasons else "int8"
    g, sim, int8 = manifest["gate"], manifest["gate"]["sim_gate"], manifest["models"]["int8"]
    result = ExportResult(
        robot, str(bundle), precision, not reasons,
        "int8 passed both gates" if not reasons else "int8 refused (" + "; ".join(reasons) + "): fp32 deployed",
        int8["recipe"]["name"], g["relative_error"], g["bound"], sim["episodes"], sim["fp32"]["success_rate"],
        sim["int8"]["success_rate"], sim["drop_points"], sim["max_drop_points"], _model_sha(bundle, precision) or "",
        serves, skipped=False)
    write_record(cfg.export_record(robot), key, fields(result), {"int8_candidate_gate": g})
    return result


@dataclass
class DeployResult:
    """Emulated episodes of one robot's bundle under a fault profile (async scheduler).

    Attributes:
        successes: episodes that met the task's predicate (None: refused before moving).
        faults: fault-monitor events per kind; injected: faults the emulator injected per kind.
        limit_violations: targets written beyond a joint range (the monitor's clip makes it 0).
        period_error_p99_ms: p99 of |control period - nominal| [ms]; inference_p99_ms likewise.
        stopped: why the last episode ended; refused: the preflight refusal ("" when it ran).
    """

    robot: str
    precision: str
    fault_profile: str
    scheduler: str
    episodes: int
    seconds: float
    successes: int | None
    faults: dict[str, int]
    injected: dict[str, int]
    limit_violations: int
    period_error_p99_ms: float | None
    inference_p99_ms: float | None
    stopped: str | None
    refused: str
    blackbox: str
    skipped: bool


def deploy_robot(cfg: DemoConfig, robot: str, exported: ExportResult) -> DeployResult:
    """`cfg.deploy_episodes` seeded emulated episodes of the robot's bundle under `cfg.fault_profile`.
    A refusal before the arm moved is a result (reported), not an error."""
    from sim_scenes import tasks

    from embodied.deploy import DeployConfig, PreflightRefused
    from embodied.deploy.emulated import deploy_emulated

    seconds = cfg.deploy_seconds or tasks.get(cfg.task).time_limit
    key = {"model": exported.model_sha256, "task": cfg.task, "episodes": cfg.deploy_episodes,
           "fault_profile": cfg.fault_profile, "seconds": seconds, "seed0": DEPLOY_SEED0}
    found = read_record(cfg.deploy_record(robot), key)
    if found is not None:
        return DeployResult(**(found | {"skipped": True}))
    box = cfg.blackbox(robot)
    box.unlink(missing_ok=True)  # the black box appends; this run's file holds this run only
    config = DeployConfig(exported.bundle, episodes=cfg.deploy_episodes, seconds=seconds, scheduler="async",
                          precision=exported.precision, blackbox=str(box))
    head = (robot, exported.precision, cfg.fault_profile, config.scheduler)
    try:
        s = deploy_emulated(config, cfg.task, cfg.fault_profile, first_seed=DEPLOY_SEED0)
    except PreflightRefused as e:
        result = DeployResult(*head, 0, seconds, None, {}, {}, 0, None, None, None, str(e), str(box), skipped=False)
        write_record(cfg.deploy_record(robot), key, fields(result), None)
        return result
    result = DeployResult(*head, s["episodes"], seconds, s["successes"], s["faults"], s["injected"],
                          s["limit_violations"], s["period_error_ms"].get("p99"), s["inference_ms"].get("p99"),
                          s["stopped"], "", str(box), skipped=False)
    write_record(cfg.deploy_record(robot), key, fields(result), s)
    return result
