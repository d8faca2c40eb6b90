"""embodied: cross-embodiment robot learning. The CLI lives in `embodied.cli`; seeded
rollouts and success statistics in `embodied.eval`; benchmarks in `embodied.bench`."""
