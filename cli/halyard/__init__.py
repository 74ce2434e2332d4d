"""Halyard's user tools: the `halyard` CLI, the dev cluster and demo, the fleet
simulator, benchmarks and test-model builders.

Nothing here runs in a pod. This package may import `halyard_operator` and
`halyard_worker`; neither of them imports it.
"""
from halyard_operator import __version__

__all__ = ["__version__"]
