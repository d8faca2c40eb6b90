"""`embodied bench bridge`: the servo bus driver against emulated chains over a pty.

1. Round trip: `read_state()` (one sync read of 6 servos) plus `write_targets()` (one sync
   write) back to back at 1 Mbit/s: cycle time p50 / p99 and the highest sustained control
   rate (cycles per second of wall time); target >= 200 Hz.
2. A 50 Hz control loop (read state, write targets along a slow sine) for `duration` s:
   period error p50 / p99 (|actual period - 20 ms|); target p99 <= 2 ms.
3. `flaky`: a 40 Hz loop through the fault monitor (`SafeController`) commanding a smooth
   trajectory (one joint's raw targets run past its limit) while the chain plays the
   `flaky` profile (5 % lost replies, 20 ms latency spikes, one servo overheating): zero
   written targets beyond the joint limits, every injected fault detected and logged
   (injected vs detected per kind), and the loop still running at the end.

The chain runs in its own process (as `embodied emulate` does), so the driver and the
emulator do not share an interpreter lock. Both servo families have their status return
delay set to 0 first, as LeRobot configures real servos.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from embodied.bench.machine import describe
from firmware_bridge.errors import BridgeError
from firmware_bridge.pacing import retry, sleep_until
from firmware_bridge.tables import Reg

TARGETS = {"control_rate_hz": 200.0, "loop_period_error_p99_ms": 2.0}
LOOP_HZ = 50.0


def _serve(robot: str, conn, stop, profile: str | None = None, stop_at: float | None = None) -> None:
    import numpy as np

    import robots
    from firmware_bridge.emulator import EmulatedChain, FaultInjector, load_profile

    spec = robots.load(robot)
    injector = FaultInjector(load_profile(profile), stop_at=stop_at) if profile else None
    home = dict(zip(spec.joint_names, spec.home))
    start = np.array([home.get(s.joint, 0.5) for s in spec.bus.servos])
    with EmulatedChain.from_bus_spec(spec.bus, faults=injector, positions_rad=start) as chain:
        conn.send(chain.port)
        stop.wait()
    conn.send([f.to_dict() for f in injector.injected] if injector else [])


class _Emulator:
    """An emulated chain of `robot` in a child process; `port` is its pty path. With a fault
    `profile`, `close()` returns the faults it injected (as dicts)."""

    def __init__(self, robot: str, profile: str | None = None, stop_at: float | None = None):
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(robot, child, self._stop, profile, stop_at), daemon=True)
        self._process.start()
        self.port: str = self._conn.recv()

    def close(self) -> list[dict]:
        self._stop.set()
        injected = self._conn.recv() if self._conn.poll(5) else []
        self._process.join(5)
        return injected


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
            sleep_until(next_tick)
            starts.append(now := time.perf_counter())
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


FLAKY_HZ = 40.0
DRAIN = 1.0  # no fault begins in the last second, so every injected one can be seen [s]


def flaky(robot: str = "so100", duration: float = 45.0, rate_hz: float = FLAKY_HZ, profile: str = "flaky",
          blackbox_dir: str = "out/bench") -> dict:
    """A `rate_hz` loop through the fault monitor under a fault `profile` for `duration` [s]."""
    import robots as robots_pkg
    from firmware_bridge.bus import ServoBus
    from firmware_bridge.monitor import BlackBox, SafeController, all_detected, audit

    spec = robots_pkg.load(robot)
    emulator = _Emulator(robot, profile, stop_at=max(0.0, duration - DRAIN))
    box = BlackBox.create(blackbox_dir, f"{robot}-{profile}", {"profile": profile, "rate_hz": rate_hz})
    completed, error = False, ""
    try:
        bus = ServoBus(spec.bus, emulator.port)
        retry(bus.connect)  # setup runs under the faults too: lost replies are asked again
        for servo_id in bus.ids:
            retry(lambda: bus.write(Reg.RETURN_DELAY_TIME, servo_id, 0))
        control = SafeController(bus, spec, blackbox=box, rate_hz=rate_hz)
        retry(control.start)
        center = control.command.copy()
        center[3] = spec.joints[3].range[1] - 0.15  # wrist_flex: raw targets run 0.15 rad past the limit
        phase = np.linspace(0.0, np.pi, len(center))

        def trajectory(t: float) -> np.ndarray:
            return center + 0.3 * np.sin(2 * np.pi * 0.2 * t + phase)

        summary = control.run(trajectory, duration, shutdown=False)
        completed = summary.completed
        control.shutdown("end of bench")
        bus.disconnect()
    except Exception as e:  # reported, not raised: the JSON says what went wrong
        error = f"{type(e).__name__}: {e}"
    finally:
        injected = emulator.close()
        box.close()
    if error:
        return {"robot": robot, "profile": profile, "error": error, "passed": False}
    report = audit(injected, control.monitor.events)
    raw_beyond = sum(int(np.count_nonzero(trajectory(t) > spec.joints[3].range[1])) for t in np.arange(0, duration, 0.1))
    return {
        "robot": robot, "profile": profile, "rate_hz": rate_hz, "duration_s": duration, "cycles": summary.cycles,
        "failed_reads": summary.failed_reads, "reactions_cycles": summary.reactions,
        "raw_targets_beyond_limits_sampled": raw_beyond, "commands_beyond_limits": summary.beyond_limits,
        "clips": {k: control.monitor.counts[k] for k in ("command_limit", "command_jump")},
        "events": dict(control.monitor.counts), "faults": report, "blackbox": str(box.path),
        "loop_running_at_end": completed,
        "passed": completed and summary.beyond_limits == 0 and all_detected(report) and bool(report),
    }


def run(duration: float = 60.0, cycles: int = 2000, robots: tuple[str, ...] = ("so100", "koch"),
        flaky_duration: float | None = None) -> dict:
    """Every bridge measurement; the flaky run lasts `flaky_duration` [s] (default: `duration`
    within 30 ... 60 s, or shorter when `duration` is)."""
    trips = [round_trip(r, cycles) for r in robots]
    loop = control_loop(robots[0], duration)
    flaky_run = flaky(robots[0], flaky_duration or min(duration, 60.0))
    return {
        "machine": describe(),
        "targets": TARGETS,
        "round_trip": trips,
        "loop_50hz": loop,
        "flaky": flaky_run,
        "met": {
            "flaky": flaky_run["passed"],
            "control_rate_hz": all(t["sustained_rate_hz"] >= TARGETS["control_rate_hz"] for t in trips),
            "loop_period_error_p99_ms": loop["period_error"]["p99_ms"] <= TARGETS["loop_period_error_p99_ms"],
        },
    }
