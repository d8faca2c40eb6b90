"""Reply timeouts sized from the bus, state blocks, transport errors: no servo needed."""

from __future__ import annotations

import pytest

import robots
from firmware_bridge.codec import CODECS, codec_for
from firmware_bridge.errors import PortError, UnknownProtocol
from firmware_bridge.link import Link, Timing
from firmware_bridge.state import Block, blocks_for
from firmware_bridge.tables import table_for
from firmware_bridge.transport import SerialTransport, list_ports


def test_every_robot_protocol_has_a_codec():
    for name in robots.available():
        bus = robots.load(name).bus
        if bus is not None:
            assert codec_for(bus.protocol).protocol == bus.protocol
    with pytest.raises(UnknownProtocol, match="dynamixel_2"):
        codec_for("dynamixel2")


def test_reply_timeout_follows_baud_rate_and_reply_length():
    link = Link(transport=None, codec=CODECS["feetech_sts"], baudrate=1_000_000, timing=Timing(margin=0.001,
                                                                                               return_delay=0.0))
    # sync read of 6 servos x 10 bytes: 20-byte request + 6 x 16-byte replies, 10 us per byte
    assert link.timeout(20, 10, 6) == pytest.approx((20 + 96) * 10e-6 + 0.001)
    slow = Link(None, CODECS["feetech_sts"], 115_200, Timing(margin=0.001, return_delay=0.0))
    assert slow.timeout(20, 10, 6) == pytest.approx((20 + 96) * 10 / 115_200 + 0.001)
    assert link.timeout(8, 2, 1) < 0.002  # the SDKs wait ~34 ms


@pytest.mark.parametrize("robot, blocks", [("so100", (Block(56, 10),)), ("koch", (Block(126, 21),)),
                                           ("vx300s", (Block(126, 21),))])
def test_state_is_one_sync_read_per_cycle(robot, blocks):
    bus = robots.load(robot).bus
    models = [table_for(s.model) for s in bus.servos]
    assert blocks_for(models, codec_for(bus.protocol).state_regs) == blocks


def test_a_missing_port_raises_port_error():
    with pytest.raises(PortError, match="/dev/no-such-port"):
        SerialTransport("/dev/no-such-port", 1_000_000)
    assert all(p.device for p in list_ports(usb_only=False))
