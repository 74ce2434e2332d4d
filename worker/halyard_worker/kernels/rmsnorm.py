"""Launcher of rmsnorm.cu: RMSNorm, optionally fused with the residual add."""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require


def _check(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None) -> None:
    require(x.is_contiguous(), "rms_norm: x must be a contiguous tensor [T, hidden]")
    hidden = x.shape[-1]
    require(hidden % 8 == 0, f"rms_norm: hidden size must be a multiple of 8, got {hidden}")
    require(weight.shape == (hidden,) and weight.dtype == x.dtype and weight.is_contiguous(),
            f"rms_norm: weight must be contiguous [{hidden}] {x.dtype}, got {tuple(weight.shape)} {weight.dtype}")
    if residual is not None:
        require(residual.shape == x.shape and residual.dtype == x.dtype and residual.is_contiguous(),
                "rms_norm: residual must match x (shape, dtype, contiguous)")
    require(aligned16(x, weight, residual), "rms_norm: tensors must start on 16-byte boundaries")


def _run(x, weight, eps: float, residual):
    _check(x, weight, residual)
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    out = torch.empty_like(x)
    h = torch.empty_like(x) if residual is not None else None
    if rows:
        block = min(256, max(32, -(-hidden // 8 // 32) * 32))
        args = (ptr(x), ptr(residual), ptr(weight), ptr(out), ptr(h), np.int32(hidden), np.float32(eps))
        launch("rmsnorm", f"rms_norm_{dtype_tag(x.dtype)}", x.device, (rows,), (block,), args)
    return out, h


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [T, hidden] -> weight * T(x * rsqrt(mean(x^2) + eps))."""
    return _run(x, weight, eps, None)[0]


def fused_add_rms_norm(x, residual, weight, eps: float):
    """h = x + residual; returns (rms_norm(h), h) in one pass over memory."""
    return _run(x, weight, eps, residual)
