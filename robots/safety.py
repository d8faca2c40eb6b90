"""SafetySpec: thresholds and graded reactions of the fault monitor, per robot.

Read from the optional `[safety]` table of robot.toml; which reaction follows which fault
is configuration, because an arm that falls when limp must not be dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Reactions of the fault monitor, mildest first; FAULT_KINDS are what it checks every cycle.
REACTIONS = ("retry", "hold", "slow_stop", "torque_off")
# Faults the deploy loop finds in the policy's actions and in its cameras (embodied.deploy) and
# hands to the same monitor (`Monitor.report`), so they take their reactions from the same table.
POLICY_FAULT_KINDS = ("nan_action", "action_limit", "action_jump", "inference_latency", "camera")
FAULT_KINDS = ("bus_timeout", "stale", "servo_error", "overheat", "overload", "voltage", "position_limit",
               "velocity_limit", "position_jump", "tracking", "torque_lost") + POLICY_FAULT_KINDS
# fault kind -> reactions in order of escalation (the next one when the fault persists).
DEFAULT_REACTIONS: dict[str, tuple[str, ...]] = {
    "bus_timeout": ("retry", "hold"),
    "stale": ("retry", "hold"),
    "servo_error": ("hold", "slow_stop"),
    "overheat": ("slow_stop", "torque_off"),
    "overload": ("hold", "slow_stop", "torque_off"),
    "voltage": ("hold", "slow_stop"),
    "position_limit": ("hold", "slow_stop"),
    "velocity_limit": ("hold",),
    "position_jump": ("hold",),
    "tracking": ("hold", "slow_stop"),
    "torque_lost": ("hold",),
    "nan_action": ("hold", "slow_stop"),
    "action_limit": ("retry", "hold"),
    "action_jump": ("hold", "slow_stop"),
    "inference_latency": ("retry", "hold"),
    "camera": ("slow_stop",),
}


@dataclass(frozen=True)
class SafetySpec:
    """Thresholds and reactions of the fault monitor (`[safety]` in robot.toml, all optional).

    Attributes:
        falls_when_limp: the arm sags or falls without torque: no fault may start with
            torque_off, and a clean shutdown leaves torque on at the safe pose.
        torque_off_at_shutdown: cut torque after a clean shutdown reached the safe pose
            (default: only for arms that do not fall).
        temperature_warn: servo temperature that raises "overheat" [degC], below the servo's
            own limit; cleared below `temperature_warn - temperature_hysteresis`.
        voltage_tolerance: allowed deviation from each servo's first reading [fraction].
        load_max: effort that raises "overload" [fraction of stall torque / current].
        tracking_error: |present - commanded| that raises "tracking" (stall, collision) [rad].
        confirm_cycles: cycles that tracking and overload must persist before they are raised.
        stale_after: age of the newest good observation that raises "stale" [s].
        latency_max: a read slower than this is logged as a latency event [s].
        escalate_cycles: consecutive cycles a fault persists before its next reaction (for
            bus timeouts this is the watchdog: consecutive failed reads).
        recover_cycles: consecutive clear cycles before a fault is cleared (hysteresis).
        limit_margin: commands are clipped this far inside the joint range [rad].
        position_tolerance: measured positions this far beyond the range raise "position_limit" [rad].
        velocity_factor: |velocity| above factor x max_velocity raises "velocity_limit" and
            bounds the position change between reads ("position_jump").
        step_factor: largest command step per cycle = factor x max_velocity / control rate.
        slow_speed: joint speed of a slow stop and of the shutdown move [rad/s].
        gripper_range: allowed gripper servo angle [rad] (the gripper is no RobotSpec joint).
        safe_pose: joint name -> angle [rad] of the rest pose; unnamed joints rest at home,
            the gripper stays where it is unless named.
        reactions: fault kind -> reactions in order of escalation (see REACTIONS).
    """

    falls_when_limp: bool = True
    torque_off_at_shutdown: bool | None = None
    temperature_warn: float = 60.0
    temperature_hysteresis: float = 5.0
    voltage_tolerance: float = 0.25
    load_max: float = 0.95
    tracking_error: float = 0.35
    confirm_cycles: int = 5
    stale_after: float = 0.1
    latency_max: float = 0.015
    escalate_cycles: int = 3
    recover_cycles: int = 10
    limit_margin: float = 0.01
    position_tolerance: float = 0.05
    velocity_factor: float = 1.5
    step_factor: float = 1.0
    slow_speed: float = 0.5
    gripper_range: tuple[float, float] = (0.0, 1.5)
    safe_pose: dict[str, float] = field(default_factory=dict)
    reactions: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_REACTIONS))

    def __post_init__(self) -> None:
        for kind, chain in self.reactions.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; kinds: {', '.join(FAULT_KINDS)}")
            if not chain or any(r not in REACTIONS for r in chain):
                raise ValueError(f"reactions of {kind!r} must be a non-empty list of {REACTIONS}, found {chain}")
            if self.falls_when_limp and chain[0] == "torque_off":
                raise ValueError(f"{kind!r} starts with torque_off, but the arm falls when limp: hold or "
                                 "slow_stop first")
        if self.slow_speed <= 0 or self.step_factor <= 0 or self.escalate_cycles < 1 or self.recover_cycles < 1:
            raise ValueError("slow_speed and step_factor must be > 0, escalate_cycles and recover_cycles >= 1")

    @property
    def shutdown_torque_off(self) -> bool:
        """Whether a clean shutdown ends with torque off."""
        return (not self.falls_when_limp) if self.torque_off_at_shutdown is None else self.torque_off_at_shutdown

    def reactions_for(self, kind: str) -> tuple[str, ...]:
        return self.reactions.get(kind, DEFAULT_REACTIONS[kind])
