"""Operator benchmarks (`halyard bench operator`)."""
