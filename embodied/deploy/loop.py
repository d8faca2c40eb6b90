"""The deploy loop: an export bundle drives an arm through the fault monitor, at the robot's
control rate. numpy + onnxruntime + pyserial only: never torch (nor MuJoCo).

Before the arm moves, `embodied.deploy.preflight` checks the bundle, the robot, the
instruction, the cameras, the bus, the first frames and a first inference; a refusal is
raised before torque is enabled or any target written. Then, each tick (1 / control_hz):

    SafeController.step(target)   read the state -> bus checks and the policy faults reported
                                  last tick -> graded reaction -> the monitor's clip -> write
    CameraRig.read(state)         one frame per camera (a failure, timeout or freeze: a fault)
    scheduler.step(observation)   this tick's action (async by default: the next chunk is
                                  inferred while the current one runs)
    PolicyWatch.check(action)     policy faults, reported to the monitor

The target decided at tick k is written by the step of tick k + 1, after that step's fresh
read and checks: one bus read per tick, and the reaction to a policy fault applies to the
very action that caused it. An episode ends after `seconds`, on `success()` (emulation),
when torque was cut, on a camera fault (a safe stop that also ends the run: the policy is
blind) or on Ctrl+C (ends the run); every episode ends with the arm brought to its safe pose
at the slow speed (`SafeController.shutdown`), so the next starts from rest.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import robots
from embodied.data.episode import Episode
from embodied.data.store import open_robot_store
from embodied.deploy import preflight
from embodied.deploy.cameras import Camera, CameraRig
from embodied.deploy.errors import CameraError, DeployError, PreflightRefused
from embodied.deploy.policy_faults import Infer, PolicyLimits, PolicyWatch
from embodied.deploy.report import ENDS_RUN, EpisodeResult, summarize
from embodied.policy.io import Observation
from embodied.runtime import AsyncScheduler, EnsembleScheduler, PolicyEngine, Scheduler, SyncScheduler
from embodied.runtime.bundle import PRECISIONS
from firmware_bridge.arm import ArmLayout
from firmware_bridge.bus import ServoBus
from firmware_bridge.monitor import BlackBox, SafeController
from firmware_bridge.monitor.events import Finding
from firmware_bridge.pacing import retry, sleep_until

SCHEDULERS: dict[str, Callable[[Infer, int], Scheduler]] = {
    "async": lambda infer, horizon: AsyncScheduler(infer, horizon),
    "sync": lambda infer, horizon: SyncScheduler(infer, horizon),
    "ensemble": lambda infer, horizon: EnsembleScheduler(infer, horizon),
}


@dataclass(frozen=True)
class DeployConfig:
    """How a bundle is deployed.

    Attributes:
        bundle: the bundle directory (`embodied export`).
        instruction: what the policy is told (None in emulation: each scene's own phrasing).
        episodes: episodes to run.
        seconds: longest episode [s].
        scheduler: "async" (inference overlaps execution), "sync" or "ensemble" (SCHEDULERS).
        precision: "int8", "fp32" or "auto" (int8 where the bundle has it).
        threads: ONNX Runtime threads (the robot computer's cores to use).
        record: episode store every episode is appended to (source "deploy"); None: none.
        blackbox: black-box file (JSON lines); None: out/blackbox/<robot>-<time>-<pid>.jsonl.
        latency_budget: inference budget [s]; None: what the scheduler can wait for a chunk
            (async: its trigger, H // 2 ticks; sync and ensemble: one tick).
        action_margin: how far beyond the joint ranges an action may go before it is a fault [rad].
        jump: largest distance of a chunk's first action from the pose it saw [rad].
        freeze_frames: repeated frames that make a camera frozen.
        camera_timeout: longest camera read [s].
    """

    bundle: str
    instruction: str | None = None
    episodes: int = 1
    seconds: float = 30.0
    scheduler: str = "async"
    precision: str = "auto"
    threads: int = 1
    record: str | None = None
    blackbox: str | None = None
    latency_budget: float | None = None
    action_margin: float = 0.1
    jump: float = 0.5
    freeze_frames: int = 15
    camera_timeout: float = 0.5

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise DeployError(f"unknown scheduler {self.scheduler!r}; use one of {sorted(SCHEDULERS)}")
        if self.precision not in ("auto", *PRECISIONS):
            raise DeployError(f"unknown precision {self.precision!r}; use auto, {' or '.join(PRECISIONS)}")
        if self.episodes < 1 or self.threads < 1 or self.freeze_frames < 1:
            raise DeployError(f"episodes, threads and freeze_frames must be >= 1; found {self.episodes}, "
                              f"{self.threads}, {self.freeze_frames}")
        if min(self.seconds, self.jump, self.camera_timeout) <= 0 or self.action_margin < 0 \
                or (self.latency_budget is not None and self.latency_budget <= 0):
            raise DeployError(f"seconds, jump, camera_timeout and latency_budget must be > 0 and action_margin >= 0; "
                              f"found {self.seconds}, {self.jump}, {self.camera_timeout}, {self.latency_budget}, "
                              f"{self.action_margin}")


def open_blackbox(config: DeployConfig, robot: robots.RobotSpec, **meta: Any) -> BlackBox:
    meta = {"mode": "deploy", "bundle": str(config.bundle), **meta}
    if config.blackbox:
        return BlackBox(config.blackbox, {"robot": robot.name, **meta})
    return BlackBox.create("out/blackbox", robot.name, meta)


def log_refusal(blackbox: BlackBox, refusal: PreflightRefused) -> None:
    blackbox.write_dict({"t": time.monotonic(), "kind": "preflight", "what": "refused", "detail": str(refusal)})


class Deployment:
    """A bundle made ready for one robot: policy loaded and checked (bundle, robot, and the
    configured instruction), schedulers and policy checks built. `run_episode` runs it on a
    bus; `close` stops the scheduler's thread.

    Args:
        config: how to deploy.
        robot: the arm (its bus spec, joint ranges, control rate, `[safety]`).
        engine: an engine already loaded for this bundle (None: loaded from `config.bundle`).
    """

    def __init__(self, config: DeployConfig, robot: robots.RobotSpec, engine: PolicyEngine | None = None):
        self.config, self.robot = config, robot
        self.engine = engine or preflight.open_policy(config.bundle, robot, config.precision, config.threads)
        if self.engine.robot != robot.name:
            raise PreflightRefused("robot", f"the engine serves {self.engine.robot!r}, this arm is {robot.name!r}",
                                   f"load the engine with a bundle of {robot.name}")
        self.bundle = self.engine.bundle
        if config.instruction is not None:
            preflight.check_instruction(self.bundle, config.instruction)
        self.layout = ArmLayout.of(robot.bus, robot)  # reads only the servo order
        period = 1.0 / robot.control_hz
        wait = max(1, self.engine.chunk // 2) if config.scheduler == "async" else 1  # ticks a chunk may take
        budget = config.latency_budget or wait * period
        self.watch = PolicyWatch(self.engine.infer, PolicyLimits.of(
            robot, (*self.layout.joint_index, self.layout.gripper_index), budget, config.action_margin, config.jump))
        self.store = None
        if config.record:
            size = self.bundle.image_shape[:2]
            self.store = open_robot_store(config.record, robot, {c: size for c in self.bundle.cameras})
        self.scheduler = SCHEDULERS[config.scheduler](self.watch.infer, self.engine.chunk)  # last: may own a thread

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.scheduler.close()

    def summary(self, results: list[EpisodeResult], blackbox: BlackBox | None = None) -> dict[str, Any]:
        return summarize(results, robot=self.robot.name, bundle=str(self.bundle.path), scheduler=self.config.scheduler,
                         precision=self.engine.precision, blackbox=str(blackbox.path) if blackbox else None,
                         record=self.config.record)

    # --- one episode ---------------------------------------------------------------------
    def _ready(self, controller: SafeController, cameras: Mapping[str, Camera], instruction: str) -> CameraRig:
        """The per-episode checks before the arm moves; returns the camera rig."""
        preflight.check_instruction(self.bundle, instruction)
        preflight.check_cameras(self.bundle, cameras)
        state = self.layout.observation(controller.bus, preflight.check_bus(controller, self.robot).positions)
        c = self.config
        rig = CameraRig(cameras, self.bundle.cameras, self.bundle.image_shape, c.freeze_frames,
                        timeout=c.camera_timeout)
        images = preflight.first_frames(rig, state)
        preflight.first_inference(self.engine, Observation(self.robot.name, instruction, state, images))
        self.engine.reset()
        self.scheduler.reset()
        self.watch.reset()
        rig.reset()
        return rig

    def run_episode(self, controller: SafeController, cameras: Mapping[str, Camera], instruction: str | None = None,
                    success: Callable[[], bool] | None = None, seed: int = -1, index: int = 0) -> EpisodeResult:
        """One episode on `controller`'s bus with `cameras`; returns what happened.

        Args:
            controller: the arm through its fault monitor (torque may be off; it is enabled here).
            instruction: what the policy is told (default: the config's).
            success: the task's predicate (emulation), checked every tick; None: unknown.
            seed: the emulation seed, stored with a recorded episode.

        Raises:
            PreflightRefused: before the arm moved. Other errors after it was brought to rest.
        """
        instruction = instruction or self.config.instruction
        if instruction is None:
            raise PreflightRefused("instruction", "no instruction given", "pass --instruction \"...\"")
        rig = self._ready(controller, cameras, instruction)
        bus, monitor, robot = controller.bus, controller.monitor, self.robot
        period, ticks = 1.0 / robot.control_hz, max(1, round(self.config.seconds * robot.control_hz))
        hold = np.full(len(bus.servos), np.nan)  # NaN targets: the monitor holds the last command
        before = Counter(monitor.counts)
        result = EpisodeResult(index, seed, instruction, steps=0, success=None if success is None else False,
                               stopped="time", faults={}, reactions=Counter(), limit_violations=0)
        frames: list[tuple[float, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        starts: list[float] = []
        target = hold
        monitor.log("deploy", "episode start", detail=f"episode {index} seed {seed}: {instruction!r}")
        try:
            retry(controller.start)  # lost replies during setup are asked again
            next_tick = time.perf_counter()
            while result.steps < ticks:
                sleep_until(next_tick)
                starts.append(time.perf_counter())
                step = controller.step(target)
                result.steps += 1
                result.reactions[step.verdict.reaction.name.lower()] += 1
                result.limit_violations += step.beyond_limits
                next_tick = max(next_tick + period, time.perf_counter() - period)  # no burst after a stall
                target = hold
                if controller.latched_off:
                    result.stopped, result.detail = "torque_off", step.verdict.cause
                    break
                if step.state is None:  # the monitor reacts to the failed read; nothing to observe
                    continue
                state = self.layout.observation(bus, step.state.positions)
                try:
                    images = rig.read(state)
                except CameraError as e:
                    monitor.report(Finding("camera", None, 1.0, 0.0, str(e)))
                    controller.step(hold)  # the monitor raises it and starts its reaction
                    result.stopped, result.detail = "camera", str(e)
                    break
                action = self.scheduler.step(Observation(robot.name, instruction, state, images))
                for finding in self.watch.check(action):
                    monitor.report(finding)
                target = self.layout.targets(bus, action)
                if self.store is not None:
                    held = self.layout.observation(bus, controller.command)
                    frames.append((starts[-1], state, np.where(np.isfinite(action), action, held), images))
                if success is not None and success():
                    result.success, result.stopped = True, "success"
                    break
        except KeyboardInterrupt:
            result.stopped = "interrupted"
        except BaseException as e:
            controller.shutdown(type(e).__name__)
            raise
        controller.shutdown(result.stopped)
        monitor.log("deploy", "episode end", detail=f"episode {index}: {result.stopped} after {result.steps} ticks")
        result.faults = dict(Counter(monitor.counts) - before)
        result.reactions = dict(result.reactions)
        result.starved = int(getattr(self.scheduler, "starved", 0))
        result.period_error_ms = np.abs(np.diff(starts) - period) * 1e3
        result.inference_ms = np.asarray(self.watch.latencies) * 1e3
        if frames:
            self._save(frames, result)
        return result

    def _save(self, frames: list[tuple[float, np.ndarray, np.ndarray, dict[str, np.ndarray]]],
              result: EpisodeResult) -> None:
        t, states, actions, images = zip(*frames)
        self.store.append(Episode(np.stack(states), np.stack(actions).astype(np.float32),
                                  (np.asarray(t) - t[0]).astype(np.float32),
                                  {c: np.stack([im[c] for im in images]) for c in self.bundle.cameras},
                                  task=result.instruction, success=bool(result.success), source="deploy",
                                  seed=result.seed))


def deploy(config: DeployConfig, robot: robots.RobotSpec, bus: ServoBus, cameras: Mapping[str, Camera],
           engine: PolicyEngine | None = None,
           on_episode: Callable[[EpisodeResult], None] | None = None) -> dict[str, Any]:
    """Run `config.episodes` episodes of the bundle on the arm behind `bus` (connected) with
    its `cameras` {name: Camera}; returns the summary (`report.summarize`). Every fault, and a
    refusal, goes to the black box.

    Raises:
        PreflightRefused: before the arm moved (nothing was written to the servos).
    """
    blackbox = open_blackbox(config, robot, port=bus.port)
    try:
        with Deployment(config, robot, engine) as deployment:
            controller = SafeController(bus, robot, blackbox=blackbox)
            results: list[EpisodeResult] = []
            for index in range(config.episodes):
                results.append(deployment.run_episode(controller, cameras, index=index))
                if on_episode is not None:
                    on_episode(results[-1])
                if results[-1].stopped in ENDS_RUN:
                    break
            return deployment.summary(results, blackbox)
    except PreflightRefused as e:
        log_refusal(blackbox, e)
        raise
    finally:
        blackbox.close()
