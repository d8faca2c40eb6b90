"""The MuJoCo plant adapter (embodied.sim_plant) behind an emulated chain: a ServoBus moves
the simulated so100 through the real Feetech protocol on a pty."""

from __future__ import annotations

import time

import numpy as np

import robots
from embodied.sim_plant import scene_plant
from firmware_bridge.bus import ServoBus
from firmware_bridge.emulator import EmulatedChain
from firmware_bridge.link import Timing


def test_bus_drives_the_mujoco_scene():
    spec = robots.load("so100")
    plant = scene_plant("so100", "lift", seed=0)
    with EmulatedChain.from_bus_spec(spec.bus, plant=plant) as chain:
        with ServoBus(spec.bus, chain.port, Timing(margin=0.02)) as bus:
            start = bus.read_state().positions
            np.testing.assert_allclose(start[:5], spec.home, atol=0.01)
            bus.torque(True)
            goal = start.copy()
            goal[0] += 0.3
            bus.write_targets(goal)
            time.sleep(0.6)
            state = bus.read_state()
    assert abs(state.positions[0] - goal[0]) < 0.05
    np.testing.assert_allclose(plant.scene.arm_q()[0], state.positions[0], atol=0.01)
