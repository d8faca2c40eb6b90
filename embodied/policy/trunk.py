"""The shared transformer trunk over the tokens of all inputs.

Token sequence (B samples, d = config.width)::

    [language (1) | image (K * G) | robot (R) | state (S) | action queries (H)]

Each part gets a learned token-type embedding; image tokens of absent cameras are masked
out of attention. The outputs at the H action-query positions are the head's context.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from embodied.policy.config import PolicyConfig

TOKEN_TYPES = ("language", "image", "robot", "state", "action")


class Trunk(nn.Module):
    """Pre-norm nn.TransformerEncoder (batch_first) with token-type embeddings."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        layer = nn.TransformerEncoderLayer(config.width, config.heads, config.mlp_ratio * config.width,
                                           dropout=config.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.depth, norm=nn.LayerNorm(config.width),
                                             enable_nested_tensor=False)
        self.type_embed = nn.Parameter(torch.randn(len(TOKEN_TYPES), config.width) * 0.02)

    def forward(self, parts: Sequence[torch.Tensor], ignore: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Args:
            parts: one float32[B, T_i, d] per entry of TOKEN_TYPES, in that order.
            ignore: per part, bool[B, T_i] (True: a token no other token attends to) or None.

        Returns:
            float32[B, T, d], T = sum of T_i.
        """
        b = parts[0].shape[0]
        tokens = torch.cat([x + self.type_embed[i] for i, x in enumerate(parts)], dim=1)
        mask = torch.cat([m if m is not None else torch.zeros(b, x.shape[1], dtype=torch.bool, device=x.device)
                          for x, m in zip(parts, ignore)], dim=1)
        return self.encoder(tokens, src_key_padding_mask=mask)
