"""Benchmarks: commands that measure and save JSON, never timed assertions in tests."""
