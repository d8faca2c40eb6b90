"""Low-rank updates of a shared module's weight matrices that belong to one robot.

An adapter-only finetune freezes the trunk, and through the frozen trunk a new arm's adapter
underfits its own actions (docs/policy_experiments.md: a loss of 0.077 against 0.017 for the
same 20 demonstrations trained from scratch). A `LowRankUpdate` gives the robot a change of
every weight matrix W of the module, of rank r,

    W' = W + B A,    A float32[r, in] (random, rows of norm about 1), B float32[out, r] (zeros at first)

so it starts as the shared module exactly and adds 2 r (in + out) parameters per matrix
(LoRA, Hu et al. 2021). The update is the robot's own: it is saved in the robot's adapter
file and the shared weights stay as they were for every other robot. `run` calls the module
with W' in place of W (`torch.func.functional_call`: the module's code is unchanged), and
`merged` makes a copy of the module holding W', which an export traces: the robot's graph has
the shape and cost of the shared one.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from embodied.errors import ConfigError


def weight_matrices(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The module's weight matrices a LowRankUpdate changes: its 2-D parameters named `weight`
    or `*_weight` (linear layers and fused projections; not embeddings or norms)."""
    return [(name, p) for name, p in module.named_parameters()
            if p.ndim == 2 and name.rsplit(".", 1)[-1].endswith("weight")]


class LowRankUpdate(nn.Module):
    """Args:
        module: the shared module whose weight matrices get an update (shapes read from it;
            the module itself is not stored, so it is not saved twice).
        rank: r, at most the smaller side of every matrix.
    """

    def __init__(self, module: nn.Module, rank: int):
        super().__init__()
        targets = weight_matrices(module)
        if not targets:
            raise ConfigError(f"{type(module).__name__} has no weight matrices to update")
        most = min(min(p.shape) for _, p in targets)
        if not 1 <= rank <= most:
            raise ConfigError(f"a low-rank update of this {type(module).__name__} has a rank from 1 to {most} "
                              f"(the smallest side of its matrices); found {rank}: give --trunk-rank in that range")
        self.rank = int(rank)
        self.names = [name for name, _ in targets]
        self.down = nn.ParameterList(nn.Parameter(torch.randn(rank, p.shape[1]) / math.sqrt(p.shape[1]))
                                     for _, p in targets)
        self.up = nn.ParameterList(nn.Parameter(torch.zeros(p.shape[0], rank)) for _, p in targets)

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Parameter name -> the updated matrix W + B A, for the module's weight matrices."""
        params = dict(module.named_parameters())
        return {name: params[name] + up @ down
                for name, down, up in zip(self.names, self.down, self.up)}

    def run(self, module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """`module(*args, **kwargs)` with the updated weight matrices."""
        return functional_call(module, self.weights(module), args, kwargs)

    def merged(self, module: nn.Module) -> nn.Module:
        """A copy of `module` whose weight matrices are the updated ones (what an export traces)."""
        out = copy.deepcopy(module)
        params = dict(out.named_parameters())
        with torch.no_grad():
            for name, weight in self.weights(module).items():
                params[name].copy_(weight)
        return out
