"""Request / reply over a transport: bounded reply timeouts sized from the baud rate and
the expected reply length, bounded retries, resynchronization past garbage.

The vendor SDKs wait ~34 ms for a silent servo (a 16 ms USB latency allowance plus slack),
longer than a whole 30 Hz control tick. Here an attempt waits for the bytes on the wire
(request and replies, 10 bits per byte), each servo's status return delay, and a fixed
margin for the OS and the adapter's latency timer (1 ms when set as transport.py says).

A control loop also bounds a request in time (`give_up_at`): at 50 Hz a reply held back
20 ms outlasts three attempts and the whole tick with them, so the loop asks again only
while its tick can afford it, and otherwise lets the fault monitor hold through the lost
read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from firmware_bridge.codec import Codec
from firmware_bridge.errors import ChecksumError, PacketError, ServoTimeout, WrongServo
from firmware_bridge.protocol.packet import Status
from firmware_bridge.transport import Transport

BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit


@dataclass(frozen=True)
class Timing:
    """Reply timeouts and retries of a bus.

    Attributes:
        margin: added to every attempt's timeout [s]: OS scheduling, USB latency timer.
        return_delay: upper bound of a servo's status return delay [s] (Dynamixel default
            500 us, Feetech 0; LeRobot sets both to 0).
        retries: attempts after the first, for the servos that stayed silent.
    """

    margin: float = 0.003
    return_delay: float = 0.0005
    retries: int = 2

    def __post_init__(self) -> None:
        if self.margin < 0 or self.return_delay < 0 or self.retries < 0:
            raise ValueError(f"{self}: margin, return delay and retries must be >= 0")


class Link:
    """Sends instruction packets and collects the replies of a set of servos.

    Args:
        transport: the byte pipe.
        codec: the bus protocol.
        baudrate: bus rate [bit/s], for the wire time of each packet.
        timing: timeouts and retries.
    """

    def __init__(self, transport: Transport, codec: Codec, baudrate: int, timing: Timing):
        self.transport, self.codec, self.baudrate, self.timing = transport, codec, baudrate, timing
        self.missed = 0  # replies that an attempt waited for in vain (lost, late or garbled), in total

    def wire_time(self, n_bytes: int) -> float:
        """Time that `n_bytes` take on the bus [s]."""
        return n_bytes * BITS_PER_BYTE / self.baudrate

    def timeout(self, request_size: int, data_len: int, n_replies: int) -> float:
        """Reply timeout of one attempt [s]: wire time of request and replies, return delays, margin."""
        wire = self.wire_time(request_size + n_replies * self.codec.reply_size(data_len))
        return wire + n_replies * self.timing.return_delay + self.timing.margin

    def send(self, packet: bytes) -> None:
        """Send a packet that no servo answers (sync write, broadcast)."""
        self.transport.write(packet)

    def request(self, build: Callable[[list[int]], bytes], ids: Sequence[int], data_len: int, what: str,
                give_up_at: float | None = None) -> dict[int, Status]:
        """Send `build(ids)` and collect one reply with `data_len` data bytes from each id;
        ids that stayed silent are asked again (`build(missing)`), up to `timing.retries` times
        and, with `give_up_at` (a `time.monotonic()` value [s]), not past that time: the first
        attempt always gets its full timeout, later ones are cut short or not sent.

        Returns:
            {id: Status} for every id in `ids`.

        Raises:
            WrongServo: only replies from other ids arrived for a servo that stayed silent.
            PacketError: only garbage arrived (no valid reply) for a servo that stayed silent.
            ServoTimeout: servos stayed silent through every attempt.
        """
        replies: dict[int, Status] = {}
        missing = list(ids)
        wrong: int | None = None
        garbage: PacketError | None = None
        timeout, attempts = 0.0, 0
        stop = float("inf") if give_up_at is None else give_up_at
        while attempts <= self.timing.retries and (attempts == 0 or time.monotonic() < stop):
            attempts += 1
            packet = build(missing)
            timeout = self.timeout(len(packet), data_len, len(missing))
            self.transport.flush_input()
            self.transport.write(packet)
            deadline = time.monotonic() + timeout
            found, wrong_now, garbage_now = self._collect(set(missing), data_len,
                                                          deadline if attempts == 1 else min(deadline, stop))
            replies.update(found)
            wrong, garbage = wrong_now if wrong_now is not None else wrong, garbage_now or garbage
            missing = [i for i in missing if i not in replies]
            if not missing:
                return replies
            self.missed += len(missing)
        if wrong is not None:
            raise WrongServo(missing[0], wrong)
        if garbage is not None:
            raise garbage
        raise ServoTimeout(missing, what, timeout, attempts)

    def _collect(self, expected: set[int], data_len: int, deadline: float
                 ) -> tuple[dict[int, Status], int | None, PacketError | None]:
        """Replies that arrive by `deadline`: ({id: Status}, a foreign id seen, last garbage)."""
        found: dict[int, Status] = {}
        wrong: int | None = None
        garbage: PacketError | None = None
        buffer = b""
        reply_size = self.codec.reply_size(data_len)
        while len(found) < len(expected):
            need = max(1, (len(expected) - len(found)) * reply_size - len(buffer))
            chunk = self.transport.read(need, deadline)
            if not chunk:
                break
            buffer += chunk
            while buffer:
                try:
                    packet, consumed = self.codec.find_packet(buffer)
                except ChecksumError as e:
                    garbage, buffer = e, buffer[e.consumed:]
                    continue
                buffer = buffer[consumed:]
                if packet is None:
                    break
                try:
                    status = self.codec.decode_status(packet, None)
                except PacketError as e:  # e.g. an instruction echoed by the adapter
                    garbage = e
                    continue
                if status.id not in expected:
                    wrong = status.id
                elif len(status.params) != data_len:
                    garbage = PacketError(f"reply of servo {status.id} with {len(status.params)} data bytes",
                                          status.params, f"{data_len} data bytes")
                else:
                    found[status.id] = status
        return found, wrong, garbage
