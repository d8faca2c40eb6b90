"""Seeded simulated rollouts in worker processes, and success rates with confidence intervals."""

from embodied.eval.rollouts import RolloutJob, RolloutResult, run_jobs
from embodied.eval.stats import SuccessRate, success_table, wilson_interval

__all__ = ["RolloutJob", "RolloutResult", "SuccessRate", "run_jobs", "success_table", "wilson_interval"]
