"""Fixtures of the deploy tests: one tiny so100 bundle for the session (built with the
torch-side exporter; its statistics centre the untrained policy's actions on the home pose,
so it asks for poses an arm can take), emulated so100 chains on real ptys, and cameras that
stand in for real sensors (the edge of the world: no camera is attached)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

import robots
from embodied.deploy.errors import CameraError
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import Calibration
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.link import Timing
from firmware_bridge.pacing import retry
from firmware_bridge.tables import Reg

INSTRUCTION = "pick up the red cube"
TIMING = Timing(margin=0.02)  # a loaded 2-core machine answers late; the bench measures real timing
SENTINEL = 1  # goal position [ticks] no deployment would write (the arm stands near mid-range)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, request):
    """A tiny so100 bundle (fp32 + int8) serving INSTRUCTION."""
    import torch

    from embodied.data.transforms import NormStats
    from embodied.export import export_policy
    from embodied.policy import LanguageEncoder, VLAPolicy, preset
    from embodied.policy.normalizer import Normalizer

    torch.manual_seed(0)
    spec = robots.load("so100")
    home = np.array([*spec.home, 0.5], np.float32)
    stats = NormStats(home, np.full(6, 0.05, np.float32), home - 0.1, home + 0.1, 10)
    language = LanguageEncoder(cache_dir=request.config.cache.mkdir("minilm_embeddings"))
    policy = VLAPolicy.for_robots(preset("tiny"), ["so100"], language,
                                  Normalizer({"so100": {"state": stats, "actions": stats}}))
    out = tmp_path_factory.mktemp("deploy") / "so100"
    export_policy(policy, "so100", out, [INSTRUCTION], quantize_int8=True, heldout=4, force=True)
    return out


class SensorCamera:
    """A camera with sensor noise (every frame differs, as a real one's), that can freeze
    (the same frame from `freeze_after` reads on) or fail (raise from `fail_after` on)."""

    def __init__(self, name: str, freeze_after: int | None = None, fail_after: int | None = None, seed: int = 0):
        self.name, self.freeze_after, self.fail_after = name, freeze_after, fail_after
        self.rng, self.reads, self.frame = np.random.default_rng(seed), 0, None
        self.closed = False

    def read(self) -> np.ndarray:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise CameraError(self.name, "the device returned no frame")
        if self.frame is None or self.freeze_after is None or self.reads <= self.freeze_after:
            self.frame = self.rng.integers(90, 110, (96, 96, 3), dtype=np.uint8)
        return self.frame

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def make_camera():
    """make_camera(name, freeze_after=None, fail_after=None, seed=0) -> SensorCamera."""
    return SensorCamera


@pytest.fixture
def cameras() -> dict[str, SensorCamera]:
    return {"front": SensorCamera("front", seed=1), "wrist": SensorCamera("wrist", seed=2)}


@dataclasses.dataclass
class Arm:
    robot: robots.RobotSpec
    chain: EmulatedChain
    bus: ServoBus

    def goals(self) -> list[int]:
        with self.chain.lock:
            return [s.get(Reg.GOAL_POSITION) for s in self.chain.servos]

    def torque(self) -> list[bool]:
        with self.chain.lock:
            return [s.torque_on for s in self.chain.servos]

    def positions(self) -> np.ndarray:
        with self.chain.lock:
            return self.chain.plant.positions.copy()


def emulated_arm(name: str) -> Iterator[Arm]:
    """An emulated arm at its home pose (first-order plant), its goal registers set to
    SENTINEL: any goal position written shows."""
    robot = robots.load(name)
    home = dict(zip(robot.joint_names, robot.home))
    start = np.array([home.get(s.joint, 0.75) for s in robot.bus.servos])
    with EmulatedChain.from_bus_spec(robot.bus, positions_rad=start) as chain:
        with chain.lock:
            for servo in chain.servos:
                servo.set(Reg.GOAL_POSITION, SENTINEL)
        bus = ServoBus(robot.bus, chain.port, TIMING, calibration=Calibration.from_spec(robot))
        retry(bus.connect)  # as a deployment connects: the emulator is a thread of this busy process
        try:
            yield Arm(robot, chain, bus)
        finally:
            bus.disconnect()


@pytest.fixture
def so100() -> Iterator[Arm]:
    yield from emulated_arm("so100")


@pytest.fixture
def koch() -> Iterator[Arm]:
    yield from emulated_arm("koch")
