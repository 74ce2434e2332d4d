"""Benchmarks (reported figures, never timed tests)."""
