"""Seeded simulated rollouts (scripted experts or trained policies) in worker processes, or a
bundle's episodes through the deploy path (`embodied.eval.emulated`),
success rates with confidence intervals, and policy evaluation (`evaluate`)."""

from embodied.runtime.chunking import ChunkExecutor, Execution
from embodied.eval.evaluate import EvalConfig, evaluate
from embodied.eval.policy_rollout import PolicySpec
from embodied.eval.rollouts import RolloutJob, RolloutResult, run_jobs
from embodied.eval.stats import SuccessRate, grounding, success_table, wilson_interval

__all__ = ["ChunkExecutor", "EvalConfig", "Execution", "PolicySpec", "RolloutJob", "RolloutResult", "SuccessRate",
           "evaluate", "grounding", "run_jobs", "success_table", "wilson_interval"]
