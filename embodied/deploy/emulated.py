"""Rehearsal: the deploy loop against an emulated arm in a MuJoCo task scene.

The same `Deployment.run_episode` that drives hardware talks the real wire protocol to an
emulated servo chain on a pseudo-terminal (`firmware_bridge.emulator`), whose plant is the
task scene (`embodied.sim_plant`); the cameras are that scene rendered offscreen, each in a
thread of its own at 30 frames per second as a real camera delivers frames (`SimCamera`), and
the task's success predicate ends an episode. A fault profile makes the chain misbehave.

An episode is reproducible from its seed: the seed places the scene (`TaskEnv.reset`) and
seeds the fault profile, so `embodied eval` can run seeded episodes through this path.
What only emulation knows comes back with each result (`EmulatedResult`): the faults the
emulator injected, as records a bench can match against the black box, and which object
the arm moved against the one the instruction named.
This module imports MuJoCo and sim_scenes (when called), never torch.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import robots
from embodied.deploy import preflight
from embodied.deploy.cameras import SimCamera, sim_cameras
from embodied.deploy.errors import PreflightRefused
from embodied.deploy.loop import DeployConfig, Deployment, log_refusal, open_blackbox
from embodied.deploy.report import ENDS_RUN, EpisodeResult, summarize
from embodied.runtime import PolicyEngine
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import Calibration
from firmware_bridge.emulator import EmulatedChain, FaultInjector, InjectedFault, load_profile
from firmware_bridge.errors import UNANSWERED
from firmware_bridge.link import Timing
from firmware_bridge.monitor import BlackBox, SafeController
from firmware_bridge.pacing import retry

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering; before mujoco is first imported


@dataclass
class EmulatedResult(EpisodeResult):
    """An `EpisodeResult` with what only emulation knows.

    `stopped` may also be "setup": the servos did not answer before the arm moved.

    Attributes:
        target: the body the scene's instruction names (`Instance.target`).
        manipulated: the body the arm moved first (`sim_scenes.grounding`), None: none.
        injected_faults: every fault the emulator injected, in order (none without a profile).
    """

    target: str = ""
    manipulated: str | None = None
    injected_faults: list[InjectedFault] = field(default_factory=list, repr=False)

    @property
    def named_object(self) -> bool:
        """Whether the arm manipulated the object the instruction named."""
        return self.manipulated is not None and self.manipulated == self.target

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"target": self.target, "manipulated": self.manipulated,
                                    "named_object": self.named_object}


@dataclass
class EmulatedArm:
    """One seeded episode's arm: the scene, its chain on a pty, a connected bus, the cameras,
    and a watch on the scene's objects (which one the arm moves)."""

    env: Any  # sim_scenes.env.TaskEnv
    chain: EmulatedChain
    bus: ServoBus
    cameras: dict[str, SimCamera]
    injector: FaultInjector | None
    watch: Any  # sim_scenes.grounding.ManipulationWatch

    @property
    def instruction(self) -> str:
        """The scene's own phrasing of its task."""
        return self.env.instance.instruction

    def success(self) -> bool:
        """The task's predicate on the scene, checked once per control tick, which is also when
        the watch looks at the objects (both under the chain's lock: it steps the scene)."""
        with self.chain.lock:
            self.watch.update()
            return bool(self.env.task.success(self.env.scene, self.env.instance))

    def result(self, episode: EpisodeResult) -> EmulatedResult:
        """`episode` with the target, the manipulated object and the injected faults."""
        fields = {f.name: getattr(episode, f.name) for f in dataclasses.fields(EpisodeResult)}
        return EmulatedResult(**fields, target=self.env.instance.target, manipulated=self.watch.manipulated,
                              injected_faults=list(self.injector.injected) if self.injector else [])


@contextmanager
def emulated_arm(env: Any, seed: int, fault_profile: str | None = None,
                 timing: Timing = Timing()) -> Iterator[EmulatedArm]:
    """`env` reset with `seed`, its robot's servo chain serving on a pty with the scene as
    plant (and `fault_profile`'s faults, seeded with `seed`), a connected bus, the cameras."""
    from embodied.sim_plant import ScenePlant
    from sim_scenes.grounding import ManipulationWatch

    env.reset(seed=seed)
    watch = ManipulationWatch(env.scene)  # before the chain steps the scene
    robot = env.robot
    injector = FaultInjector(load_profile(fault_profile), seed=seed) if fault_profile else None
    with ExitStack() as stack:
        chain = stack.enter_context(EmulatedChain.from_bus_spec(robot.bus, ScenePlant(env.scene, robot.bus),
                                                                injector))
        bus = ServoBus(robot.bus, chain.port, timing, calibration=Calibration.from_spec(robot))
        retry(bus.connect)  # the fault profile drops and delays replies during setup too
        stack.callback(bus.disconnect)
        cameras = sim_cameras(env.scene, chain.lock)
        for cam in cameras.values():
            stack.callback(cam.close)
        yield EmulatedArm(env, chain, bus, cameras, injector, watch)


def run_emulated_episodes(bundle: str | os.PathLike, task: str, seeds: Sequence[int], fault_profile: str | None = None,
                          config: DeployConfig | None = None, engine: PolicyEngine | None = None,
                          blackbox: BlackBox | None = None, timing: Timing = Timing(),
                          on_episode: Callable[[EpisodeResult], None] | None = None,
                          instruction_set: str = "train") -> list[EmulatedResult]:
    """One emulated episode of `bundle` per seed in `task`; their results.

    Args:
        fault_profile: a shipped profile name (none, flaky, harsh) or a .toml path.
        config: instruction (None: each scene's own), seconds, scheduler, precision, record ...
            (its bundle and episodes are `bundle` and `seeds`).
        engine: an engine already loaded for the bundle.
        blackbox: where every episode's events go (None: `open_blackbox(config)`).
        timing: reply timeouts of the emulated bus.
        instruction_set: the scenes' phrasings, "train" or "heldout" (with `config.instruction` None).

    An episode whose emulated servos did not answer intact before the arm moved (connecting,
    checking the bus, enabling torque: reads outside the monitor, which the chain's thread
    misses on a loaded machine or under a fault profile) ends as stopped "setup", failed,
    and the run goes on: it is a deployment that did not start, not a broken configuration.

    Raises:
        PreflightRefused: a check before the arm moved failed (bundle, instruction, cameras ...).
    """
    from sim_scenes.env import TaskEnv

    config = dataclasses.replace(config or DeployConfig(str(bundle)), bundle=str(bundle), episodes=max(1, len(seeds)))
    robot = robots.load(engine.robot) if engine is not None else preflight.bundle_robot(bundle)
    box = blackbox or open_blackbox(config, robot, task=task, fault_profile=fault_profile or "none")
    env = TaskEnv(task, robot.name, images=False, instruction_set=instruction_set)
    results: list[EmulatedResult] = []
    try:
        with Deployment(config, robot, engine) as deployment:
            for index, seed in enumerate(seeds):
                try:
                    with emulated_arm(env, seed, fault_profile, timing) as arm:
                        controller = SafeController(arm.bus, robot, blackbox=box)
                        result = arm.result(deployment.run_episode(controller, arm.cameras,
                                                                   config.instruction or arm.instruction,
                                                                   arm.success, seed, index))
                        result.injected = arm.injector.counts() if arm.injector else {}
                except (*UNANSWERED, PreflightRefused) as e:  # before the arm moved: the episode fails, not the run
                    if isinstance(e, PreflightRefused) and e.check != "bus":
                        raise
                    result = _unanswered(env, seed, index, e, box)
                results.append(result)
                if on_episode is not None:
                    on_episode(result)
                if result.stopped in ENDS_RUN:
                    break
    except PreflightRefused as e:
        log_refusal(box, e)
        raise
    finally:
        env.close()
        if blackbox is None:
            box.close()
    return results


def _unanswered(env: Any, seed: int, index: int, error: Exception, blackbox: BlackBox) -> EmulatedResult:
    """The result of an episode whose servos did not answer before the arm moved, logged."""
    blackbox.write_dict({"t": time.monotonic(), "kind": "setup", "what": "failed", "detail": str(error)})
    inst = env.instance  # reset for this seed before the bus was opened
    return EmulatedResult(index, seed, inst.instruction, steps=0, success=False, stopped="setup", faults={},
                          reactions={}, limit_violations=0, detail=str(error), target=inst.target)


@dataclass
class EmulatedSession:
    """Emulated episodes of one bundle, finished: its robot, one result per seed, the model
    ONNX Runtime ran ("int8" or "fp32") and the black-box file every episode wrote to."""

    robot: robots.RobotSpec
    episodes: list[EmulatedResult]
    precision: str
    blackbox: Path


def run_session(config: DeployConfig, task: str, seeds: Sequence[int], fault_profile: str | None = None,
                timing: Timing = Timing(), on_episode: Callable[[EpisodeResult], None] | None = None,
                instruction_set: str = "train") -> EmulatedSession:
    """`run_emulated_episodes` with the engine and the black box opened (and closed) here."""
    robot = preflight.bundle_robot(config.bundle)
    engine = preflight.open_policy(config.bundle, robot, config.precision, config.threads)
    box = open_blackbox(config, robot, task=task, fault_profile=fault_profile or "none")
    try:
        episodes = run_emulated_episodes(config.bundle, task, seeds, fault_profile, config, engine, box, timing,
                                         on_episode, instruction_set)
    finally:
        box.close()
    return EmulatedSession(robot, episodes, engine.precision, Path(box.path))


def deploy_emulated(config: DeployConfig, task: str, fault_profile: str | None = None, first_seed: int = 0,
                    timing: Timing = Timing(),
                    on_episode: Callable[[EpisodeResult], None] | None = None) -> dict[str, Any]:
    """`config.episodes` emulated episodes (seeds first_seed, first_seed + 1 ...); the run's summary."""
    run = run_session(config, task, range(first_seed, first_seed + config.episodes), fault_profile, timing,
                      on_episode)
    return summarize(run.episodes, robot=run.robot.name, bundle=str(config.bundle), scheduler=config.scheduler,
                     precision=run.precision, task=task, fault_profile=fault_profile or "none",
                     blackbox=str(run.blackbox), record=config.record)
