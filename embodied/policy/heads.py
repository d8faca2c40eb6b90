"""Action heads: trunk context -> an action chunk, behind one interface.

Both read the trunk outputs at the H action-query positions (context float32[B, H, d]) and
use the robot adapter's `action_out` (and `action_in`) layers for its m action dimensions.
Actions are normalized; `loss` returns an unreduced float32[B, H, m] error that the policy
weights with the action masks (masked targets are zeroed before they get here, so they
cannot influence anything).

    l1    regression: |f(context) - actions|
    flow  rectified flow: x_t = t a + (1 - t) noise, the network predicts a - noise;
          sampling integrates from noise (t = 0) to actions (t = 1) in `flow_steps` Euler steps
"""

from __future__ import annotations

import math

import torch
from torch import nn

from embodied.policy.adapters import RobotAdapter
from embodied.policy.config import PolicyConfig


class ActionHead(nn.Module):
    """Interface of the action heads."""

    def loss(self, context: torch.Tensor, actions: torch.Tensor, adapter: RobotAdapter,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """context float32[B, H, d], actions float32[B, H, m] -> error float32[B, H, m]."""
        raise NotImplementedError

    def sample(self, context: torch.Tensor, adapter: RobotAdapter,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """context float32[B, H, d] -> actions float32[B, H, m] (normalized)."""
        raise NotImplementedError


class L1Head(ActionHead):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.width
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU())

    def loss(self, context, actions, adapter, generator=None):
        return (self.sample(context, adapter) - actions).abs()

    def sample(self, context, adapter, generator=None):
        return adapter.action_out(self.mlp(context))


class _FlowBlock(nn.Module):
    """Residual: depthwise conv along the chunk (mixes neighbouring steps), then an MLP."""

    def __init__(self, width: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.mix = nn.Conv1d(width, width, 3, padding=1, groups=width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.mix(self.norm1(h).transpose(1, 2)).transpose(1, 2)
        return h + self.mlp(self.norm2(h))


class FlowHead(ActionHead):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        w = config.flow_width
        self.steps = config.flow_steps
        self.context = nn.Linear(config.width, w)
        self.time = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(_FlowBlock(w) for _ in range(config.flow_depth))
        self.norm = nn.LayerNorm(w)
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(w // 2) / max(w // 2, 1)),
                             persistent=False)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, adapter: RobotAdapter) -> torch.Tensor:
        """x float32[B, H, m] at times t float32[B] in [0, 1] -> velocity float32[B, H, m]."""
        angles = 1000.0 * t[:, None] * self.freqs
        emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
        h = adapter.action_in(x) + self.context(context) + self.time(emb)[:, None]
        for block in self.blocks:
            h = block(h)
        return adapter.action_out(self.norm(h))

    def loss(self, context, actions, adapter, generator=None):
        b = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator, device=actions.device)
        t = torch.rand(b, generator=generator, device=actions.device)
        x = t[:, None, None] * actions + (1.0 - t[:, None, None]) * noise
        return (self.velocity(x, t, context, adapter) - (actions - noise)).square()

    def sample(self, context, adapter, generator=None):
        b, h = context.shape[:2]
        x = torch.randn((b, h, adapter.action_dim), generator=generator, device=context.device)
        dt = 1.0 / self.steps
        for i in range(self.steps):
            t = torch.full((b,), i * dt, device=context.device)
            x = x + dt * self.velocity(x, t, context, adapter)
        return x


HEADS: dict[str, type[ActionHead]] = {"l1": L1Head, "flow": FlowHead}
