"""Policy I/O: what a policy reads and what it returns (numpy only, no torch).

The torch-free runtime reuses these types, so this module must never import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embodied.errors import InvalidInput


@dataclass(frozen=True, eq=False)
class Observation:
    """One observation of one robot, in robot units (SI, as in its RobotSpec).

    Args:
        robot: robot name (a policy adapter and a RobotSpec of that name).
        instruction: the task in words, e.g. "pick up the red cube".
        state: proprioception float32[n] (joint positions [rad], then gripper opening [0, 1]).
        images: {camera name: uint8[h, w, 3]}; cameras of the robot that are absent are masked.
    """

    robot: str
    instruction: str
    state: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.robot, str) or not self.robot:
            raise InvalidInput(f"Observation.robot must be a robot name, found {self.robot!r}")
        if not isinstance(self.instruction, str):
            raise InvalidInput(f"Observation.instruction must be text, found {type(self.instruction).__name__}")
        state = np.asarray(self.state, np.float32)
        if state.ndim != 1 or not np.isfinite(state).all():
            raise InvalidInput(f"Observation.state must be a finite vector float32[n], found shape {state.shape} "
                               f"with {int((~np.isfinite(state)).sum())} non-finite values")
        object.__setattr__(self, "state", state)
        for cam, img in self.images.items():
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
                raise InvalidInput(f"Observation.images[{cam!r}] must be uint8[h, w, 3], found {img.dtype}{list(img.shape)}")


@dataclass(frozen=True, eq=False)
class ActionChunk:
    """Actions for the next H control steps, in robot units.

    Args:
        actions: float32[H, m]: absolute joint targets [rad] then the gripper command in [0, 1].
    """

    actions: np.ndarray

    def __post_init__(self):
        actions = np.asarray(self.actions, np.float32)
        if actions.ndim != 2:
            raise InvalidInput(f"ActionChunk.actions must be float32[H, m], found shape {actions.shape}")
        object.__setattr__(self, "actions", actions)

    @property
    def horizon(self) -> int:
        return self.actions.shape[0]

    @property
    def dim(self) -> int:
        return self.actions.shape[1]


def relative_to_state(actions: np.ndarray, state: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Joint targets relative to the joint positions of `state` (openpi's delta actions), or,
    with `inverse`, relative targets back to absolute ones.

    Every RobotSpec lays both vectors out as joints, then the gripper: the first m - 1 action
    dimensions are joint targets and the first m - 1 state dimensions the same joints'
    positions; the gripper command (the last action dimension, in [0, 1]) stays absolute.
    Broadcasts over leading dimensions: actions float32[..., H, m], state float32[..., n].
    """
    actions = np.array(actions, np.float32)  # a copy: the caller's chunk is left as it was
    state = np.asarray(state, np.float32)
    joints = actions.shape[-1] - 1
    if state.shape[-1] < joints:
        raise InvalidInput(f"relative actions need the state to carry the {joints} joint positions the actions "
                           f"target; the state has {state.shape[-1]} dimensions")
    reference = state[..., None, :joints]
    actions[..., :joints] += reference if inverse else -reference
    return actions
