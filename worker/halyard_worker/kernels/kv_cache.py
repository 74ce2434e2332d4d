"""Launcher of kv_cache.cu: scatter the step's k/v into the paged KV cache (in place)."""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require


def write_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             slot_mapping: torch.Tensor) -> None:
    """k, v: [T, Hkv, D] (token stride free, heads packed) -> slots of k/v_cache [N, B, Hkv, D]."""
    require(k_cache.dim() == 4 and k_cache.is_contiguous() and v_cache.is_contiguous(),
            "write_kv: k_cache and v_cache must be contiguous tensors [num_blocks, block_size, Hkv, D]")
    require(v_cache.shape == k_cache.shape and v_cache.dtype == k_cache.dtype,
            "write_kv: v_cache must match k_cache")
    _, _, hkv, d = k_cache.shape
    t = slot_mapping.shape[0]
    require(slot_mapping.dtype == torch.int64 and slot_mapping.dim() == 1 and slot_mapping.is_contiguous(),
            "write_kv: slot_mapping must be a contiguous int64 tensor [T]")
    row = hkv * d
    require(row % 8 == 0, f"write_kv: Hkv * D must be a multiple of 8, got {row}")
    for name, x in (("k", k), ("v", v)):
        require(x.shape == (t, hkv, d) and x.dtype == k_cache.dtype,
                f"write_kv: {name} must be [{t}, {hkv}, {d}] {k_cache.dtype}, got {tuple(x.shape)} {x.dtype}")
        require(x.stride(2) == 1 and (hkv == 1 or x.stride(1) == d) and (t <= 1 or x.stride(0) % 8 == 0),
                f"write_kv: {name} must have packed heads and a token stride that is a multiple of 8")
    require(aligned16(k, v, k_cache, v_cache), "write_kv: tensors must start on 16-byte boundaries")
    if t:
        args = (ptr(k), ptr(v), ptr(k_cache), ptr(v_cache), ptr(slot_mapping), np.int32(row),
                np.int64(k.stride(0)), np.int64(v.stride(0)))
        launch("kv_cache", f"write_kv_{dtype_tag(k.dtype)}", k.device, (t,), (128,), args)
