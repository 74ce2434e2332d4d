"""Helpers that build small, self-contained models for tests, demos and benchmarks."""
