"""The optimization loop shared by `embodied train` and `embodied finetune`.

Per step (every process of a distributed run takes the same decisions):
  1. a batch with NaN/inf is skipped (all processes skip when any one has one), counted,
     and the run stops after `max_bad_batches` in a row;
  2. forward, backward, gradient clipping; a non-finite loss or gradient norm skips the
     update the same way;
  3. the smoothed loss (mean over processes) is checked for divergence *before* the update,
     so a diverged update is never applied and never saved;
  4. AdamW step, learning-rate schedule (linear warm-up, cosine or constant), and with
     `ema` the weight average (`embodied.train.ema`), which the checkpoints then hold;
  5. every `log_every` steps a CSV row; every `ckpt_every` steps (and at the end) the
     `save` callback writes `last` (and `best` when the smoothed loss improved) on rank 0.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from tqdm import tqdm

from embodied.train.config import TrainConfig
from embodied.train.curves import LossLog
from embodied.train.distributed import Dist
from embodied.train.ema import WeightAverage, named_trainable, restore_raw
from embodied.train.guard import LossGuard, batch_is_finite
from embodied.train.rundir import rng_state, set_rng_state

log = logging.getLogger(__name__)

# save(kind, state) -> where it went; kind is "last" or "best"; called on rank 0 only
SaveFn = Callable[[str, dict[str, Any]], str]
Batches = Callable[[int], Iterator[dict[str, Any]]]  # step -> batches from that step on


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0
        if cfg.schedule == "constant":
            return warm
        return warm * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, step / cfg.steps))))
    return factor


@dataclass
class Fit:
    """What one run optimizes: `model(batch)` returns {"loss", "loss/<robot>"} and optional
    terms such as "grounding" (it may be a DistributedDataParallel wrapper); `params` are the
    trainable parameters."""

    model: nn.Module
    params: Sequence[nn.Parameter]
    batches: Batches
    robots: list[str]
    cfg: TrainConfig
    dist: Dist
    run: Path
    save: SaveFn


def fit(job: Fit, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Optimize from `state` (a saved train state, or None for a fresh run) to `cfg.steps`."""
    cfg, d = job.cfg, job.dist
    opt = torch.optim.AdamW(job.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg))
    guard = LossGuard(cfg.max_bad_batches, cfg.diverge_factor, cfg.diverge_after)
    start, best_saved, seconds = 0, math.inf, 0.0
    named = named_trainable(job.model, job.params)
    average = WeightAverage(named, cfg.ema) if cfg.ema else None
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        guard.load_state_dict(state["guard"])
        start, best_saved, seconds = state["step"], state["best_saved"], state["seconds"]
        rngs = state["rng"]
        if len(rngs) == d.world:
            set_rng_state(rngs[d.rank])
        if "ema" in state:  # the checkpoint loaded is the average; the optimizer stepped the raw weights
            if average is not None:
                average.resume(state["ema"])
            else:
                restore_raw([n for n, _ in named], [p for _, p in named], state["ema"])
    last_good = (f"The last good checkpoint is {job.run / 'last'} (step {start})" if state is not None
                 else "No checkpoint was saved before")
    curve = LossLog(job.run / "loss.csv", job.robots, start if state is not None else None) if d.main else None
    bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not (cfg.progress and d.main),
               dynamic_ncols=True)
    batches, t0, window = job.batches(start), time.perf_counter() - seconds, None
    job.model.train()
    try:
        for step in range(start + 1, cfg.steps + 1):
            batch = next(batches)
            out = _step(job, opt, guard, batch, step, last_good)
            if out is not None:
                sched.step()
                if average is not None:
                    average.update()
                window = out
                bar.set_postfix(loss=f"{guard.ema:.4f}", skipped=guard.skipped, refresh=False)
            bar.update()
            if curve is not None and (step % cfg.log_every == 0 or step == cfg.steps) and window is not None:
                curve.append({"step": step, "loss": window["loss"], "loss_ema": guard.ema,
                              "lr": opt.param_groups[0]["lr"], "skipped": guard.skipped,
                              "seconds": round(time.perf_counter() - t0, 2),
                              **{k: v for k, v in window.items() if k != "loss"}})
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                train_state = {"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "guard": guard.state_dict(), "rng": d.gather(rng_state()), "world": d.world,
                               "seconds": time.perf_counter() - t0, "config": cfg.to_dict()}
                improved = guard.ema is not None and guard.ema < best_saved
                best_saved = min(best_saved, guard.ema) if guard.ema is not None else best_saved
                train_state["best_saved"] = best_saved
                if d.main:
                    with average.applied() if average is not None else nullcontext() as raw:
                        if average is not None:
                            train_state["ema"] = average.state(raw)
                        where = job.save("last", train_state)
                        if improved:
                            job.save("best", train_state)
                    curve.plot(job.run / "loss.png", f"{job.run.name}: {', '.join(job.robots)}")
                    last_good = f"The last good checkpoint is {where} (step {step})"
                d.barrier()
    finally:
        bar.close()
        if curve is not None and curve.rows:
            curve.plot(job.run / "loss.png", f"{job.run.name}: {', '.join(job.robots)}")
    return {"steps": cfg.steps, "loss_ema": guard.ema, "best_loss_ema": guard.best, "skipped_batches": guard.skipped,
            "seconds": round(time.perf_counter() - t0, 1), "processes": d.world}


def _step(job: Fit, opt: torch.optim.Optimizer, guard: LossGuard, batch: dict[str, Any], step: int,
          last_good: str) -> dict[str, float] | None:
    """One update; None when the batch was skipped."""
    d = job.dist
    if d.any(not batch_is_finite(batch)):
        log.warning(guard.bad(step, "NaN or inf in its state or actions"))
        return None
    out = job.model(batch)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    norm = torch.nn.utils.clip_grad_norm_(job.params, job.cfg.grad_clip)
    loss = d.mean(out["loss"].item())
    if not (math.isfinite(loss) and math.isfinite(float(norm))):
        opt.zero_grad(set_to_none=True)
        log.warning(guard.bad(step, "a non-finite loss or gradient"))
        return None
    guard.good(step, loss, last_good)  # raises TrainingDiverged before the update is applied
    opt.step()
    return {"loss": loss, **{k: float(v.item()) for k, v in out.items() if k != "loss"}}
