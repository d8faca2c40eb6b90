"""WeightAverage: an exponential moving average of the trained parameters.

A policy imitating a few dozen demonstrations ends training with weights that the last
batches pulled toward their few scenes. The average of the weights over about the last
1 / (1 - decay) updates is what checkpoints hold when averaging is on (so eval, export and
deploy load it), while the optimizer keeps stepping the raw weights; the raw weights ride in
the train state, so a resumed run continues them. Diffusion Policy and openpi evaluate
averaged weights for the same reason.

    python -m embodied.train.ema runs/X --raw-out runs/X_raw   # the raw weights as a checkpoint

The second form writes the run's raw (not averaged) weights as a policy checkpoint, to
measure what the average changes (docs/policy_experiments.md): the average only reads the
weights, so they are those the same run without `--ema` ends with, and one run gives both.
A finetune, which keeps no train state (it is not resumable), saves only the averaged adapter.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn


class WeightAverage:
    """Averages `named` parameters (name, parameter) with `decay`, warmed up so the first
    updates are not weighted by the random initialization: rate = min(decay, (1 + n) / (10 + n))."""

    def __init__(self, named: Sequence[tuple[str, nn.Parameter]], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight-average decay must lie in (0, 1), found {decay}")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.decay, self.updates = decay, 0
        self.shadow = [p.detach().clone() for p in self.params]

    def rate(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Average in the parameters as the optimizer left them."""
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.rate())
        self.updates += 1

    @contextmanager
    def applied(self) -> Iterator[dict[str, torch.Tensor]]:
        """Within the block the parameters hold the average (to save it); the block gets the raw
        weights by name, and they are back in the parameters after it."""
        raw = [p.detach().clone() for p in self.params]
        _assign(self.params, self.shadow)
        try:
            yield dict(zip(self.names, raw))
        finally:
            _assign(self.params, raw)

    def state(self, raw: dict[str, torch.Tensor]) -> dict[str, Any]:
        """What a train state keeps: the raw weights (the checkpoint beside it holds the average)."""
        return {"decay": self.decay, "updates": self.updates, "raw": raw}

    def resume(self, saved: dict[str, Any]) -> None:
        """Continue from a train state whose checkpoint was loaded into the parameters: that
        checkpoint is the average, `saved["raw"]` the weights the optimizer left."""
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = saved["updates"]
        restore_raw(self.names, self.params, saved)


def restore_raw(names: Sequence[str], params: Sequence[nn.Parameter], saved: dict[str, Any]) -> None:
    """Put a train state's raw weights back into the parameters (the run resumes from them)."""
    raw = saved["raw"]
    missing = [n for n in names if n not in raw]
    if missing:
        raise KeyError(f"the train state's raw weights lack {missing[:3]}{'...' if len(missing) > 3 else ''}")
    _assign(params, [raw[n] for n in names])


@torch.no_grad()
def _assign(params: Sequence[nn.Parameter], values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values):
        p.copy_(v)


def named_trainable(model: nn.Module, params: Sequence[nn.Parameter]) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) for `params`, named as in the unwrapped model's state dict."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    wanted = {id(p) for p in params}
    return [(n, p) for n, p in inner.named_parameters() if id(p) in wanted]


def main(argv: list[str] | None = None) -> int:
    from embodied.policy import save_checkpoint
    from embodied.policy.checkpoint import load_checkpoint
    from embodied.train.rundir import load_state, resolve_policy

    p = argparse.ArgumentParser(prog="python -m embodied.train.ema", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder trained with --ema")
    p.add_argument("--raw-out", required=True, help="folder for a checkpoint of the raw (not averaged) weights")
    args = p.parse_args(argv)
    found = resolve_policy(args.run)
    state = load_state(found)
    if "ema" not in state:
        raise SystemExit(f"{args.run} was trained without --ema: its checkpoint already holds the raw weights")
    policy = load_checkpoint(found)
    named = list(policy.named_parameters())
    raw = state["ema"]["raw"]
    restore_raw([n for n, _ in named if n in raw], [q for n, q in named if n in raw], state["ema"])
    print(save_checkpoint(policy, args.raw_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
