import time

import pytest

from firmware_bridge.errors import BridgeError
from firmware_bridge.pacing import retry, sleep_until


def test_retry_asks_again_after_lost_replies_and_gives_up_after_the_last_attempt():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise BridgeError("no reply")
        return "state"

    assert retry(flaky, attempts=3) == "state" and len(calls) == 3
    calls.clear()
    with pytest.raises(BridgeError, match="no reply"):
        retry(flaky, attempts=2)
    assert len(calls) == 2
    with pytest.raises(ZeroDivisionError):  # only bus errors are retried
        retry(lambda: 1 / 0)


def test_retry_waits_twice_as_long_after_each_failure():
    calls = []

    def silent():
        calls.append(time.monotonic())
        raise BridgeError("no reply")

    with pytest.raises(BridgeError):
        retry(silent, attempts=4, backoff=0.02)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert len(gaps) == 3 and all(gap >= 0.02 * 2**k for k, gap in enumerate(gaps)), gaps


def test_sleep_until_never_returns_early():
    for wait in (0.0, 0.001, 0.004):
        deadline = time.perf_counter() + wait
        sleep_until(deadline)
        assert time.perf_counter() >= deadline
    sleep_until(time.perf_counter() - 1.0)  # a passed deadline returns at once
