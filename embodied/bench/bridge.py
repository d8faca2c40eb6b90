"""`embodied bench bridge`: the servo bus driver against emulated chains over a pty.

1. Round trip: `read_state()` (one sync read of 6 servos) plus `write_targets()` (one sync
   write) back to back at 1 Mbit/s: cycle time p50 / p99 and the highest sustained control
   rate (cycles per second of wall time); target >= 200 Hz.
2. A 50 Hz control loop (read state, write targets along a slow sine) for `duration` s:
   period error p50 / p99 (|actual period - 20 ms|); target p99 <= 2 ms.

The chain runs in its own process (as `embodied emulate` does), so the driver and the
emulator do not share an interpreter lock. Both servo families have their status return
delay set to 0 first, as LeRobot configures real servos.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import time

import numpy as np

from firmware_bridge.errors import BridgeError

TARGETS = {"control_rate_hz": 200.0, "loop_period_error_p99_ms": 2.0}
LOOP_HZ = 50.0


def _serve(robot: str, conn, stop) -> None:
    import robots
    from firmware_bridge.emulator import EmulatedChain

    with EmulatedChain.from_bus_spec(robots.load(robot).bus) as chain:
        conn.send(chain.port)
        stop.wait()


class _Emulator:
    """An emulated chain of `robot` in a child process; `port` is its pty path."""

    def __init__(self, robot: str):
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(robot, child, self._stop), daemon=True)
        self._process.start()
        self.port: str = parent.recv()

    def close(self) -> None:
        self._stop.set()
        self._process.join(5)


def _bus(robot: str, port: str):
    import robots
    from firmware_bridge.bus import ServoBus
    from firmware_bridge.tables import Reg

    bus = ServoBus(robots.load(robot).bus, port)
    bus.connect()
    for servo_id in bus.ids:
        bus.write(Reg.RETURN_DELAY_TIME, servo_id, 0)
    bus.torque(True)
    return bus


def _ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "max_ms": round(float(a.max()), 3)}


def round_trip(robot: str, cycles: int) -> dict:
    """Back-to-back read_state + write_targets cycles against an emulated `robot`."""
    emulator = _Emulator(robot)
    try:
        bus = _bus(robot, emulator.port)
        hold = bus.read_state().positions
        times, errors = [], 0
        start = time.perf_counter()
        for _ in range(cycles):
            t = time.perf_counter()
            try:
                bus.read_state()
                bus.write_targets(hold)
            except BridgeError:  # counted: a timeout after every retry
                errors += 1
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        bus.disconnect()
    finally:
        emulator.close()
    return {"robot": robot, "protocol": bus.spec.protocol, "servos": len(bus.ids), "baudrate": bus.spec.baudrate,
            "cycles": cycles, "cycle": _ms(times), "sustained_rate_hz": round(cycles / elapsed, 1), "bus_errors": errors}


def control_loop(robot: str, duration: float) -> dict:
    """A 50 Hz loop (read state, write a slow sine) for `duration` [s]; period error stats."""
    emulator = _Emulator(robot)
    period = 1.0 / LOOP_HZ
    try:
        bus = _bus(robot, emulator.port)
        home = bus.read_state().positions
        starts, busy, errors = [], [], 0
        t0 = time.perf_counter()
        next_tick = t0
        while next_tick - t0 < duration:
            while (now := time.perf_counter()) < next_tick:  # sleep, then spin the last 0.5 ms
                if next_tick - now > 5e-4:
                    time.sleep(next_tick - now - 5e-4)
            starts.append(now)
            try:
                bus.read_state()
                bus.write_targets(home + 0.2 * np.sin(2 * np.pi * 0.5 * (now - t0)))
            except BridgeError:  # counted: the loop keeps running
                errors += 1
            busy.append(time.perf_counter() - now)
            next_tick += period
        bus.disconnect()
    finally:
        emulator.close()
    period_error = np.abs(np.diff(starts) - period).tolist()
    return {"robot": robot, "rate_hz": LOOP_HZ, "duration_s": duration, "ticks": len(starts),
            "period_error": _ms(period_error), "cycle_busy": _ms(busy), "bus_errors": errors}


def run(duration: float = 60.0, cycles: int = 2000, robots: tuple[str, ...] = ("so100", "koch")) -> dict:
    trips = [round_trip(r, cycles) for r in robots]
    loop = control_loop(robots[0], duration)
    return {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "targets": TARGETS,
        "round_trip": trips,
        "loop_50hz": loop,
        "met": {
            "control_rate_hz": all(t["sustained_rate_hz"] >= TARGETS["control_rate_hz"] for t in trips),
            "loop_period_error_p99_ms": loop["period_error"]["p99_ms"] <= TARGETS["loop_period_error_p99_ms"],
        },
    }
