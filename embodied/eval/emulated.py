"""Seeded evaluation episodes through the deploy path (`embodied eval --emulate`).

The gymnasium rollout steps the scene in lockstep with the policy; a deployment does not:
the bundle runs in ONNX Runtime behind an action-chunk scheduler, at the robot's rate in
wall-clock time, through the fault monitor and the real wire protocol to an emulated servo
chain whose plant is the same seeded scene, seen by its rendered cameras
(`embodied.deploy.emulated`). The same seeds give the same scenes and instructions as the
gymnasium rollout, so the two success rates are directly comparable, and the gap between
them is what the deploy path costs. A fault profile adds what cheap servos do.

Beyond success, a run reports its faults by kind, its joint-limit violations, its loop
timing, and an audit of the emulator's injected faults against the black box
(`fault_audit`). No torch is imported here.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import robots
from embodied.deploy import DeployConfig
from embodied.deploy.emulated import EmulatedResult, run_session
from embodied.deploy.report import summarize
from embodied.eval.rollouts import RolloutResult
from firmware_bridge.emulator import FaultProfile, InjectedFault, load_profile
from firmware_bridge.emulator.profile import Overheat
from firmware_bridge.emulator.servo import AMBIENT
from firmware_bridge.link import Timing
from firmware_bridge.monitor import all_detected, audit, read_blackbox

READ_MARGIN = 0.5  # [s] time for a ramp past the warning to be read and raised (a few control ticks)


@dataclass
class EmulatedRun:
    """Seeded episodes of one bundle through the deploy path.

    Attributes:
        robot, task: what ran.
        episodes: one result per seed, in order.
        precision: the model ONNX Runtime ran ("int8" or "fp32").
        fault_profile: the emulator's profile ("none": healthy servos).
        blackbox: the file every episode's events went to.
    """

    robot: robots.RobotSpec
    task: str
    episodes: list[EmulatedResult]
    precision: str
    fault_profile: str
    blackbox: Path

    def rollouts(self) -> list[RolloutResult]:
        """The episodes as the gymnasium rollouts report them (their `seconds`: the episode's
        length at the control rate)."""
        hz = self.robot.control_hz
        return [RolloutResult(self.robot.name, self.task, r.seed, bool(r.success), r.steps, r.instruction,
                              r.steps / hz, None, len(r.inference_ms),
                              round(float(np.mean(r.inference_ms)), 3) if len(r.inference_ms) else 0.0,
                              r.target, r.manipulated) for r in self.episodes]

    def summary(self) -> dict[str, Any]:
        """Totals of the deploy path: faults, limit violations, loop timing, peak RSS of this
        process, and the fault audit (per-episode entries stay with the episodes)."""
        totals = summarize(self.episodes, fault_profile=self.fault_profile, precision=self.precision,
                           blackbox=str(self.blackbox))
        del totals["per_episode"]
        return totals | {"fault_audit": fault_audit(self.episodes, self.blackbox, self.fault_profile, self.robot)}


def run_emulated(bundle: str, task: str, seeds: Sequence[int], fault_profile: str | None = None,
                 config: DeployConfig | None = None, instruction_set: str = "train",
                 on_episode: Callable[[EmulatedResult], None] | None = None, timing: Timing = Timing()) -> EmulatedRun:
    """One emulated episode of `bundle` per seed of `task`, each scene telling its own instruction.

    Args:
        fault_profile: none, flaky, harsh, or a .toml path (None: none).
        config: scheduler, precision, threads, episode length, black-box file (its bundle
            and instruction are replaced: `bundle`, each scene's own).
        timing: reply timeouts and retries of the emulated bus.
    """
    config = dataclasses.replace(DeployConfig(bundle) if config is None else config, bundle=str(bundle),
                                 instruction=None)
    run = run_session(config, task, seeds, fault_profile, timing, on_episode, instruction_set)
    return EmulatedRun(run.robot, task, run.episodes, run.precision, fault_profile or "none", run.blackbox)


def fault_audit(episodes: Sequence[EmulatedResult], blackbox: Path, fault_profile: str,
                robot: robots.RobotSpec) -> dict[str, Any]:
    """Did every fault the emulator injected reach the black box?

    Each injected fault is matched with the events of the black-box file
    (`firmware_bridge.monitor.audit`) if the monitor could have seen it: injected while an
    episode's controller ran, and detectable before that episode ended. The others are
    counted apart (`unmonitored`), not as missed: faults of the setup before the controller
    starts (connecting, the preflight read), and overheats, injected as a temperature ramp
    that reaches the monitor's warning only (warn - ambient) / rate seconds after it began,
    longer than most episodes.
    """
    log = read_blackbox(blackbox)
    spans = _monitored_spans(log)
    delay = _detection_delays(load_profile(fault_profile), robot.safety.temperature_warn)
    judged, unmonitored = [], Counter()
    for fault in (f for r in episodes for f in r.injected_faults):
        if any(start <= fault.t and fault.t + delay(fault) <= end for start, end in spans):
            judged.append(fault)
        else:
            unmonitored[fault.kind] += 1
    report = audit(judged, log)
    return {"by_kind": report, "unmonitored": dict(sorted(unmonitored.items())),
            "every_fault_in_blackbox": all_detected(report)}


def _monitored_spans(log: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """(first controller start, end) [s, monotonic] of each episode in a black-box log."""
    spans, start = [], None
    for e in log:
        if e.get("kind") == "controller" and e.get("what") == "start" and start is None:
            start = e["t"]
        elif e.get("kind") == "deploy" and e.get("what") == "episode end" and start is not None:
            spans.append((start, e["t"]))
            start = None
    return spans


def _detection_delays(profile: FaultProfile, temperature_warn: float) -> Callable[[InjectedFault], float]:
    """fault -> how long after it began the monitor can first see it [s] (inf: never)."""
    ramps = {f.servo: f for f in profile.timed if isinstance(f, Overheat)}

    def delay(fault: InjectedFault) -> float:
        ramp = ramps.get(fault.servo) if fault.kind == "overheat" else None
        if ramp is None:
            return 0.0
        return (temperature_warn - AMBIENT) / ramp.rate + READ_MARGIN if ramp.peak >= temperature_warn else math.inf

    return delay
