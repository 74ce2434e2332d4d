"""Launcher of rotary.cu: NeoX-style RoPE on q and k with per-token cos/sin rows."""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import dtype_tag, launch, ptr, require


def _check_heads(name: str, x: torch.Tensor) -> None:
    require(x.dim() == 3, f"rotary: {name} must be [T, heads, D], got {tuple(x.shape)}")
    require(x.stride(2) == 1 and (x.shape[1] == 1 or x.stride(1) == x.shape[2]),
            f"rotary: {name} must have packed heads (strides [*, D, 1]), got {tuple(x.stride())}")


def rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """q: [T, H, D], k: [T, Hkv, D] (token stride free), cos/sin: [T, D] float32 -> (q, k) contiguous."""
    _check_heads("q", q)
    _check_heads("k", k)
    t, hq, d = q.shape
    require(k.shape[0] == t and k.shape[2] == d and k.dtype == q.dtype,
            f"rotary: k must be [{t}, Hkv, {d}] {q.dtype}, got {tuple(k.shape)} {k.dtype}")
    require(d % 2 == 0, f"rotary: head dim must be even, got {d}")
    for name, c in (("cos", cos), ("sin", sin)):
        require(c.dtype == torch.float32 and c.shape == (t, d) and c.is_contiguous(),
                f"rotary: {name} must be contiguous [{t}, {d}] float32, got {tuple(c.shape)} {c.dtype}")
    q_out, k_out = torch.empty(q.shape, dtype=q.dtype, device=q.device), torch.empty(
        k.shape, dtype=k.dtype, device=k.device)
    if t:
        args = (ptr(q), ptr(k), ptr(cos), ptr(sin), ptr(q_out), ptr(k_out), np.int32(hq),
                np.int32(k.shape[1]), np.int32(d), np.int64(q.stride(0)), np.int64(k.stride(0)))
        launch("rotary", f"rotary_{dtype_tag(q.dtype)}", q.device, (t,), (128,), args)
    return q_out, k_out
