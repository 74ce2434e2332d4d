"""Halyard's CUDA kernels: one `.cu` file per kernel, a launcher per kernel
(CuPy on torch tensors, torch's current stream), torch references, the
`--kernels` op selection and CUDA-graph capture of the decode step.

Importing this package imports neither torch nor CuPy; the launchers do.
"""
from __future__ import annotations

from halyard_worker.kernels.ops import MODES, KernelOps, add_kernels_argument, resolve_mode, select_ops

__all__ = ["MODES", "KernelOps", "add_kernels_argument", "resolve_mode", "select_ops"]
