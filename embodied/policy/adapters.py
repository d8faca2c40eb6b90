"""Per-robot adapters: everything of the policy that depends on the robot.

An adapter turns its robot's proprioception (any number of dimensions; with
`config.grounded_state`, plus where the grounded keypoints are in each of its cameras) into
tokens, adds a few learned robot tokens and one learned embedding per camera of the robot,
and maps head features to its robot's action dimensions. Optionally it carries its own copy
of the image encoder's spatial layers (`ImageLayers`, for a new arm whose cameras the shared
ones do not read well) and its own low-rank update of the trunk's weight matrices
(`LowRankUpdate`, for a new arm whose actions the frozen trunk does not fit). Everything else
is shared; adding a robot is adding an adapter.
"""

from __future__ import annotations

import difflib
from typing import Sequence

import torch
from torch import nn

from embodied.errors import NoAdapter
from embodied.policy.config import PolicyConfig
from embodied.policy.encoders import ImageLayers
from embodied.policy.lowrank import LowRankUpdate


GROUNDED_PER_CAMERA = 5  # keypoint 0 (x, y), keypoint 1 (x, y), camera present (1) or not (0)


def grounded_keypoints(keypoints: torch.Tensor) -> torch.Tensor:
    """Keypoints of present images float32[P, K, 2] (K >= 2) -> what a grounded state stem
    reads of each, float32[P, GROUNDED_PER_CAMERA]: keypoints 0 and 1 and a present flag (an
    absent camera reads as all zeros)."""
    return torch.cat([keypoints[:, :2].flatten(1), keypoints.new_ones(keypoints.shape[0], 1)], dim=-1)


class RobotAdapter(nn.Module):
    """Args:
        state_dim: proprioception dimensions n.
        action_dim: action dimensions m.
        cameras: the robot's camera names (one learned embedding each).
        config: policy architecture (token width, token counts, head kind).
        image_layers: the robot's own image spatial layers, or None (it uses the shared ones).
        trunk_update: the robot's own low-rank update of the trunk, or None (the shared trunk).
    """

    def __init__(self, state_dim: int, action_dim: int, cameras: Sequence[str], config: PolicyConfig,
                 image_layers: ImageLayers | None = None, trunk_update: LowRankUpdate | None = None):
        super().__init__()
        if state_dim < 1 or action_dim < 1 or len(set(cameras)) != len(cameras):
            raise NoAdapter(f"an adapter needs state_dim >= 1, action_dim >= 1 and distinct camera names; "
                            f"found {state_dim}, {action_dim}, {list(cameras)}")
        self.state_dim, self.action_dim, self.cameras = int(state_dim), int(action_dim), list(cameras)
        d = config.width
        self.num_state_tokens = config.state_tokens
        # input: the state with absent dimensions zeroed, the mask itself, and per camera the
        # grounded keypoints (GROUNDED_PER_CAMERA values) when config.grounded_state
        self.grounded = config.grounded_state
        grounded_dim = GROUNDED_PER_CAMERA * len(cameras) if self.grounded else 0
        self.state_stem = nn.Sequential(nn.Linear(2 * state_dim + grounded_dim, d), nn.SiLU(),
                                        nn.Linear(d, config.state_tokens * d))
        self.robot_tokens = nn.Parameter(torch.randn(config.robot_tokens, d) * 0.02)
        self.camera_embed = nn.Parameter(torch.randn(len(cameras), d) * 0.02)
        self.action_out = nn.Linear(config.head_width, action_dim)
        self.action_in = nn.Linear(action_dim, config.head_width) if config.head == "flow" else None
        self.image_layers = image_layers
        self.trunk_update = trunk_update

    def state_tokens(self, state: torch.Tensor, mask: torch.Tensor, grounded: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """Normalized state float32[B, n] and mask bool[B, n] (and, with config.grounded_state,
        `grounded_keypoints` of the robot's cameras in its camera order, float32[B, C,
        GROUNDED_PER_CAMERA]) -> tokens float32[B, S, d]."""
        mask = mask.to(state.dtype)
        parts = [state * mask, mask]
        if self.grounded:
            if grounded is None:
                raise NoAdapter("this adapter reads the grounded keypoints of its cameras (grounded_state); "
                                "pass them to state_tokens")
            parts.append(grounded.flatten(1))
        return self.state_stem(torch.cat(parts, dim=-1)).unflatten(-1, (self.num_state_tokens, -1))

    def camera_index(self, name: str) -> int:
        if name not in self.cameras:
            raise NoAdapter(f"camera {name!r} is not one of this robot's cameras {self.cameras}")
        return self.cameras.index(name)


class Adapters(nn.Module):
    """Robot name -> RobotAdapter, in an nn.ModuleDict."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.robots = nn.ModuleDict()

    def add_robot(self, name: str, state_dim: int, action_dim: int, cameras: Sequence[str],
                  image_layers: ImageLayers | None = None, trunk_update: LowRankUpdate | None = None) -> RobotAdapter:
        """A new adapter (randomly initialized) for robot `name`; replaces an existing one."""
        self.robots[name] = RobotAdapter(state_dim, action_dim, cameras, self.config, image_layers, trunk_update)
        return self.robots[name]

    @property
    def names(self) -> list[str]:
        return list(self.robots.keys())

    def __getitem__(self, name: str) -> RobotAdapter:
        if name not in self.robots:
            close = difflib.get_close_matches(name, self.names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise NoAdapter(f"the policy has no adapter for robot {name!r}{hint} Robots: {self.names}. "
                            "Add one with `embodied finetune --robot NAME --adapter-only`")
        return self.robots[name]

    def adapter_state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The parameters of one adapter alone (keys relative to the adapter)."""
        return {k: v.detach().clone() for k, v in self[name].state_dict().items()}

    def freeze_all_but(self, model: nn.Module, name: str) -> list[nn.Parameter]:
        """Freeze every parameter of `model` except robot `name`'s adapter; return the trainable ones."""
        keep = {id(p) for p in self[name].parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
        return list(self[name].parameters())
