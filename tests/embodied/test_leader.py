"""Leader-arm teleoperation with two emulated so100 chains on two ptys: the operator moves
the leader (its plant), the follower tracks through both calibrations, episodes are saved."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import robots
from embodied.collect.leader import TeleopError, clip_targets, follower_limits, leader_to_follower, teleoperate
from embodied.collect.teleop_input import TeleopCommand
from embodied.data.store import EpisodeStore, open_robot_store
from firmware_bridge.arm import ArmLayout
from firmware_bridge.bus import ServoBus
from firmware_bridge.calibration import Calibration
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.link import Timing

TIMING = Timing(margin=0.02)
MOUNTING = (0.31, -0.52, 1.04, 0.2, -0.73, 0.4)  # the leader's horns sit elsewhere than robot.toml says


class Operator:
    """Moves the leader arm along `pose(tick)` and presses keys at scripted ticks."""

    def __init__(self, chain: EmulatedChain, pose, keys: dict[int, set[str]], ticks: int):
        self.chain, self.pose, self.keys, self.ticks, self.tick = chain, pose, keys, ticks, 0

    def poll(self) -> TeleopCommand:
        with self.chain.lock:
            self.chain.plant.positions = np.array(self.pose(self.tick), dtype=float)
        events = frozenset(self.keys.get(self.tick, set()) | ({"quit"} if self.tick >= self.ticks else set()))
        self.tick += 1
        return TeleopCommand(events=events)


class StillCamera:
    def __init__(self, name, size):
        self.name, self.frame = name, np.full((*size, 3), 128, np.uint8)

    def read(self) -> np.ndarray:
        return self.frame

    def close(self) -> None:
        pass


@pytest.fixture
def arms():
    robot = robots.load("so100")
    physical = dataclasses.replace(robot.bus, servos=tuple(dataclasses.replace(s, offset=o)
                                                           for s, o in zip(robot.bus.servos, MOUNTING)))
    home = np.array([*robot.home, 0.75])
    leader_cal = Calibration.from_spec(dataclasses.replace(robot, bus=physical))  # as if calibrated
    with EmulatedChain.from_bus_spec(physical, positions_rad=home) as leader_chain, \
            EmulatedChain.from_bus_spec(robot.bus, positions_rad=home) as follower_chain:
        leader = ServoBus(robot.bus, leader_chain.port, TIMING, calibration=leader_cal)
        follower = ServoBus(robot.bus, follower_chain.port, TIMING, calibration=Calibration.from_spec(robot))
        with leader, follower:
            yield robot, home, leader_chain, follower_chain, leader, follower


def test_follower_tracks_the_leader_and_episodes_are_saved(arms, tmp_path):
    robot, home, leader_chain, follower_chain, leader, follower = arms
    lo = np.array([j.range[0] for j in robot.joints])

    def pose(tick: int) -> np.ndarray:
        q = home.copy()
        s = min(tick, 45) / 45  # moves for 1.5 s, then holds
        q[:5] += 0.4 * np.sin(np.pi * s) * np.array([1, -1, 1, -0.5, 1])
        q[5] = 0.75 + 0.6 * s  # the gripper opens to 1.35 / 1.5 = 0.9
        if 20 <= tick < 25:
            q[0] = lo[0] - 0.5  # beyond the follower's limit
        return q

    store = open_robot_store(tmp_path / "leader.zarr", robot, {"front": (96, 96)})
    keys = {0: {"start"}, 30: {"save"}, 31: {"start"}, 36: {"discard"}, 37: {"start"}, 70: {"save"}}
    summary = teleoperate(leader, follower, robot, robot, Operator(leader_chain, pose, keys, ticks=72), store,
                          task="wave", cameras={"front": StillCamera("front", (96, 96))})
    assert (summary.saved, summary.discarded) == (2, 1)
    # 5 ticks command past the limit; the emulated leader's plant lags its pose by a tick, and
    # on a loaded machine (its thread starved) leaves the limit a tick or two later
    assert 4 <= summary.clipped <= 7 and summary.ticks == 72
    # the follower is where the leader is (true joint angles of both emulated arms)
    with leader_chain.lock, follower_chain.lock:
        truth, reached = leader_chain.plant.positions.copy(), follower_chain.plant.positions.copy()
    np.testing.assert_allclose(reached, truth, atol=0.02)
    state = follower.read_state().positions
    np.testing.assert_allclose(state[:5], truth[:5], atol=0.02)

    s = EpisodeStore.open(tmp_path / "leader.zarr")
    assert s.num_episodes == 2 and [s.episode_meta(i)["length"] for i in range(2)] == [30, 33]
    ep = s.episode(1)
    assert ep.source == "teleop" and ep.task == "wave" and s.fps == robot.control_hz
    assert ep.state.shape == ep.action.shape == (33, 6) and ep.images["front"].shape == (33, 96, 96, 3)
    np.testing.assert_allclose(ep.timestamp[:3], np.arange(3) / robot.control_hz, atol=1e-6)
    np.testing.assert_allclose(ep.action[-1, :5], truth[:5], atol=2e-3)  # commanded = leader, within a tick
    assert ep.action[-1, 5] == pytest.approx(0.9, abs=2e-3) and ep.state[-1, 5] == pytest.approx(0.9, abs=0.02)
    np.testing.assert_allclose(ep.state[-1], ep.action[-1], atol=0.02)  # tracked by the end
    first = s.episode(0)
    assert first.action[:, 0].min() >= lo[0] - 1e-6  # clipped at the follower's limit
    assert np.all((first.action[:, 5] >= 0) & (first.action[:, 5] <= 1))


def test_joint_mapping_and_clipping(arms):
    robot, home, _, _, leader, follower = arms
    ll, fl = ArmLayout.of(leader, robot), ArmLayout.of(follower, robot)
    q = home.copy()
    q[5] = leader.calibration.servo("gripper").opening_to_radians(0.3)
    targets = leader_to_follower(q, leader, ll, follower, fl)
    np.testing.assert_allclose(targets[:5], home[:5])
    assert follower.calibration.servo("gripper").opening(targets[5]) == pytest.approx(0.3)
    lo, hi = follower_limits(follower, robot)
    tick = 2 * np.pi / 4096
    np.testing.assert_allclose(lo[:5], [j.range[0] for j in robot.joints], atol=tick)
    assert np.all(lo[:5] >= [j.range[0] for j in robot.joints]) and np.all(hi[:5] <= [j.range[1] for j in robot.joints])
    assert (lo[5], hi[5]) == pytest.approx((0, 1.5), abs=tick)
    np.testing.assert_allclose(follower.write_targets(lo), lo, atol=1e-12)  # limits lie on whole ticks
    sent, clipped = clip_targets(hi + 1, lo, hi)
    np.testing.assert_array_equal(sent, hi)
    assert clipped.all()
    with pytest.raises(TeleopError, match="non-finite"):
        clip_targets(np.full(6, np.nan), lo, hi)


def test_leader_command_needs_both_ports(capsys):
    from embodied.cli.main import main

    assert main(["record", "--teleop", "leader", "--robot", "so100", "--out", "x.zarr", "--port", "/dev/null"]) == 2
    assert "--leader-port" in capsys.readouterr().err
