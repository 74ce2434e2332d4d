"""The worker's option vocabulary, shared by the CRD, the operator and the worker.

The worker is the authority on what it accepts (`halyard-worker serve`
flags, `EngineConfig`); the operator declares the same values as CRD enums
and passes them through to the worker's command line. This module imports
nothing but the standard library, so the operator (no torch, no worker
extra) may import it: it is the only `halyard_worker` module the operator
imports (tests/test_import_graph.py).
"""
from __future__ import annotations

DTYPES = ("auto", "bfloat16", "float16", "float32")  # "auto": the checkpoint's dtype (float32 on CPU)
QUANTIZATIONS = ("none", "int8", "int4", "int4-awq")  # weight-only; int4-awq: int4 with calibrated scales
INT4_GROUP_SIZES = (32, 64, 128)  # input weights per int4 scale/zero (the CUDA kernel needs multiples of 32)
INT4_DEFAULT_GROUP_SIZE = 128
KERNEL_MODES = ("auto", "cupy", "torch")  # hot-path ops: CUDA kernels via CuPy, or the torch reference


def one_of(values: tuple[str, ...]) -> str:
    """("a", "b", "c") -> "a, b or c" (for error messages)."""
    return f"{', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else values[0]
