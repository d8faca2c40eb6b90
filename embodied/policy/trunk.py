"""The shared transformer trunk over the tokens of all inputs.

Token sequence (B samples, d = config.width)::

    [language (L) | image (K * G) | robot (R) | state (S) | action queries (H)]

L is 1 (the pooled sentence embedding) or `config.language_tokens` (MiniLM token
embeddings). Each part gets a learned token-type embedding; padding language tokens and
the image tokens of absent cameras are masked out of attention. The outputs at the H
action-query positions are the head's context. There are no positional embeddings: the trunk
reads its tokens as a set, which is what lets `Trunk.forward(pack=True)` reorder them.

The layers are pre-norm transformer blocks written out here rather than taken from
`nn.TransformerEncoder`, whose attention exports with extra Squeeze, Unsqueeze, Split and
Reshape nodes (at batch one each node costs time whatever its size) and which needs its
fused fast path switched off to export at all. Training uses `scaled_dot_product_attention` (fused kernels on GPU).
Parameter names are those of `nn.TransformerEncoder(norm_first=True)`, so checkpoints saved
with it load unchanged and compute the same outputs (tests/embodied/policy/test_trunk.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from embodied.policy.config import PolicyConfig

TOKEN_TYPES = ("language", "image", "robot", "state", "action")


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused input projection (`in_proj_*`, q|k|v rows)."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """x float32[B, T, d], bias float32[B, 1, 1, T] (0 or -inf per key) -> float32[B, Q, d]:
        the outputs of the last Q = `queries` tokens (None: all T), attending to all T."""
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads
        if queries is None:
            qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, t, 3 * h, dh)
            q, k, v = qkv.transpose(1, 2).split(h, dim=1)  # each [B, h, T, d/h]
        else:
            w, c = self.in_proj_weight, self.in_proj_bias
            q = F.linear(x[:, -queries:], w[:d], c[:d]).view(b, queries, h, dh).transpose(1, 2)
            k, v = F.linear(x, w[d:], c[d:]).view(b, t, 2 * h, dh).transpose(1, 2).split(h, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, q.shape[2], d))


class Block(nn.Module):
    """Pre-norm block: x + attention(norm1(x)), then x + MLP(norm2(x)) with a GELU."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        d = config.width
        self.self_attn = SelfAttention(d, config.heads, config.dropout)
        self.linear1 = nn.Linear(d, config.mlp_ratio * d)
        self.linear2 = nn.Linear(config.mlp_ratio * d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """x float32[B, T, d] -> float32[B, Q, d], the last Q = `queries` tokens (None: all T)."""
        attended = self.self_attn(self.norm1(x), bias, queries)
        x = (x if queries is None else x[:, -queries:]) + self.dropout(attended)
        return x + self.dropout(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x))))))


class Encoder(nn.Module):
    """`depth` blocks and a final LayerNorm (named `layers` and `norm`, as in nn.TransformerEncoder)."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.layers = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width)

    def forward(self, x: torch.Tensor, ignore: torch.Tensor, keep_last: int | None = None) -> torch.Tensor:
        """x float32[B, T, d], ignore bool[B, T] (True: a key no token attends to) ->
        float32[B, T, d], or only the last `keep_last` tokens' outputs [B, keep_last, d].

        Nothing reads the other outputs of the last layer, so with `keep_last` it computes
        queries, attention output and MLP for those tokens alone (keys and values for all)."""
        bias = torch.zeros(ignore.shape, dtype=x.dtype, device=x.device).masked_fill(ignore, float("-inf"))
        bias = bias[:, None, None, :]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, bias, keep_last if i == last else None)
        return self.norm(x)


class Trunk(nn.Module):
    """The pre-norm transformer encoder with token-type embeddings."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.encoder = Encoder(config)
        self.type_embed = nn.Parameter(torch.randn(len(TOKEN_TYPES), config.width) * 0.02)

    def forward(self, parts: Sequence[torch.Tensor], ignore: Sequence[torch.Tensor | None],
                keep_last: int | None = None, pack: bool = False) -> torch.Tensor:
        """Args:
            parts: one float32[B, T_i, d] per entry of TOKEN_TYPES, in that order.
            ignore: per part, bool[B, T_i] (True: a token no other token attends to) or None.
            keep_last: return only the outputs of the last this many tokens (the action
                queries), computed alone in the last layer; None: every token's.
            pack: leave ignored tokens out before the layers (`pack_part`). The outputs kept
                are the same (an ignored token is attended to by nothing, and the trunk has no
                positions), but a pooled batch stops running every robot's camera slots and
                the padding of the longest instruction through every layer: with four arms
                that name four slots between them, each sample has two cameras, so about a
                third of the tokens. Needs `keep_last` (the other outputs move). Off for ONNX
                export, whose graph must not depend on the example's masks.

        Returns:
            float32[B, T, d], T = sum of T_i (or keep_last).
        """
        if pack and keep_last is None:
            raise ValueError("pack=True reorders the tokens; it needs keep_last (only those outputs stay in place)")
        b = parts[0].shape[0]
        if pack:
            parts, ignore = zip(*(pack_part(x, m) for x, m in zip(parts, ignore)))
        tokens = torch.cat([x + self.type_embed[i] for i, x in enumerate(parts)], dim=1)
        mask = torch.cat([m if m is not None else torch.zeros(b, x.shape[1], dtype=torch.bool, device=x.device)
                          for x, m in zip(parts, ignore)], dim=1)
        return self.encoder(tokens, mask, keep_last)


def pack_part(x: torch.Tensor, ignore: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One part's tokens float32[B, T, d] with each sample's attended tokens moved to the front
    (in their order) and the part cut to the most any sample attends to, float32[B, T', d], with
    its ignore mask bool[B, T'] (None: nothing to pack)."""
    if ignore is None:
        return x, None
    kept = int((~ignore).sum(1).max()) if ignore.numel() else 0
    if kept == x.shape[1]:
        return x, ignore
    order = torch.argsort(ignore.to(torch.uint8), dim=1, stable=True)[:, :kept]
    return x.gather(1, order[..., None].expand(-1, -1, x.shape[2])), ignore.gather(1, order)
