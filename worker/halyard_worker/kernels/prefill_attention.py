"""Launcher of prefill_attention.cu: varlen causal prefill attention over the paged cache.

Every prefill chunk of a step in one launch, one block per (tile of TILE
queries of one sequence, KV head), K/V read in place from the cache; the
tiles come from `model.prefill.PrefillBatch` (built on the host with the
step's other inputs, so the launch reads nothing back from the device).
"""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require
from halyard_worker.kernels.paged_attention import check_caches
from halyard_worker.model.prefill import TILE

HEAD_DIMS = (32, 64, 128, 256)
KERNEL_TILE = 4  # TILE in prefill_attention.cu


def _check(q, k_cache, v_cache, prefill) -> None:
    require(TILE == KERNEL_TILE, f"prefill_attention: model.prefill.TILE ({TILE}) must equal the kernel's {KERNEL_TILE}")
    require(q.dim() == 3, "paged_attention_prefill: q must be [Tp, H, D]")
    check_caches("paged_attention_prefill", q, k_cache, v_cache, HEAD_DIMS)
    tp = q.shape[0]
    require(tp == prefill.num_tokens, f"paged_attention_prefill: q has {tp} rows, the batch {prefill.num_tokens}")
    for name in ("q_lens", "ctx_lens", "cu_q", "block_tables", "tiles"):
        t = getattr(prefill, name)
        require(t.dtype == torch.int64 and t.is_contiguous() and t.device == q.device,
                f"paged_attention_prefill: prefill.{name} must be contiguous int64 on {q.device}")
    require(aligned16(k_cache, v_cache), "paged_attention_prefill: caches must start on 16-byte boundaries")


def paged_attention_prefill(q, k, v, k_cache, v_cache, prefill, scale: float) -> torch.Tensor:
    """q: [Tp, H, D] (k, v: the same rows' K/V, already in the cache and not
    read again); caches [N, B, Hkv, D]; prefill: a PrefillBatch -> [Tp, H, D]."""
    _check(q, k_cache, v_cache, prefill)
    q = q.contiguous()
    tp, h, d = q.shape
    _, b, hkv, _ = k_cache.shape
    out = torch.empty_like(q)
    n_tiles = prefill.tiles.shape[1]
    if tp == 0:
        return out
    launch("prefill_attention", f"prefill_attention_{dtype_tag(q.dtype)}_d{d}", q.device, (n_tiles, hkv), (128,),
           (ptr(q), ptr(k_cache), ptr(v_cache), ptr(prefill.block_tables), ptr(prefill.q_lens),
            ptr(prefill.ctx_lens), ptr(prefill.cu_q), ptr(prefill.tiles), ptr(out), np.int32(h), np.int32(hkv),
            np.int32(b), np.int32(prefill.block_tables.shape[1]), np.int32(n_tiles), np.float32(scale)))
    return out
