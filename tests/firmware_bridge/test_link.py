"""Reply timeouts sized from the bus, state blocks, transport errors: no servo needed."""

from __future__ import annotations

import time

import pytest

import robots
from firmware_bridge.codec import CODECS, codec_for
from firmware_bridge.errors import PortError, ServoTimeout, UnknownProtocol
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


class SilentBus:
    """A transport with nothing attached (where the world ends): every read waits for its
    deadline and gets nothing; counts the requests written."""

    port = "silent"

    def __init__(self):
        self.requests = 0

    def write(self, data: bytes) -> None:
        self.requests += 1

    def read(self, n: int, deadline: float) -> bytes:
        time.sleep(max(0.0, deadline - time.monotonic()))
        return b""

    def flush_input(self) -> None: ...

    def close(self) -> None: ...


def _ping_silent(timing: Timing, give_up_after: float | None = None) -> tuple[ServoTimeout, int]:
    codec, transport = CODECS["feetech_sts"], SilentBus()
    link = Link(transport, codec, 1_000_000, timing)
    give_up_at = None if give_up_after is None else time.monotonic() + give_up_after
    with pytest.raises(ServoTimeout) as e:
        link.request(lambda ids: codec.ping(ids[0]), [3], codec.ping_data, "a ping", give_up_at)
    return e.value, transport.requests


def test_retries_stop_when_the_loop_tick_is_spent():
    timing = Timing(margin=0.005, return_delay=0.0, retries=5)  # ~5 ms per attempt
    err, sent = _ping_silent(timing)
    assert err.attempts == sent == 6  # unbounded: 1 + 5 retries
    # 60 % of a 50 Hz tick: the first attempt in full, at most two more, the last cut short
    err, sent = _ping_silent(timing, give_up_after=0.012)
    assert err.attempts == sent and 1 <= sent <= 3
    err, sent = _ping_silent(timing, give_up_after=0.0)  # already spent: the first attempt still goes out
    assert err.attempts == sent == 1
