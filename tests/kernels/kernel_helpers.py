"""Kernel test helpers: the skip for `gpu` tests and per-dtype tolerances."""
from __future__ import annotations

import importlib.util

import pytest


def cuda_ready() -> bool:
    """A CUDA GPU visible to torch and CuPy installed."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("cupy") is None:
        return False
    import torch

    return torch.cuda.is_available()


requires_gpu = pytest.mark.skipif(not cuda_ready(), reason="needs a CUDA GPU, torch with CUDA and CuPy")


def tolerance(dtype) -> dict:
    """assert_close tolerances for one rounding step of fp16/bf16 plus fp32 accumulation order."""
    import torch

    return {torch.float16: dict(atol=2e-3, rtol=2e-3), torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}[dtype]


def nosync(fn, *args):
    """Call a launcher with torch's sync debug mode at "error": a host sync raises."""
    import torch

    torch.cuda.set_sync_debug_mode("error")
    try:
        return fn(*args)
    finally:
        torch.cuda.set_sync_debug_mode("default")
