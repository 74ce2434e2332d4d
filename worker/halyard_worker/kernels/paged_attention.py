"""Launcher of paged_attention.cu: split-K paged decode attention (GQA).

The grid covers P = ceil(MB * B / PARTITION) partitions of the widest block
table, so no host needs the device-side context lengths; blocks past a
sequence's length exit at once. With P == 1 pass 1 writes the output directly.
"""
from __future__ import annotations

import numpy as np
import torch

from halyard_worker.kernels.loader import aligned16, dtype_tag, launch, ptr, require

PARTITION = 256  # tokens per pass-1 block; must equal PARTITION in paged_attention.cu
HEAD_DIMS = (16, 32, 64, 128, 256)
MAX_GROUP = 8  # query heads per KV head


def check_caches(op: str, q, k_cache, v_cache, head_dims: tuple[int, ...]) -> None:
    """The paged caches' layout, dtype, head dim and GQA group against q [rows, H, D]."""
    require(k_cache.dim() == 4 and k_cache.is_contiguous() and v_cache.is_contiguous()
            and v_cache.shape == k_cache.shape,
            f"{op}: k_cache and v_cache must be contiguous [num_blocks, block_size, Hkv, D]")
    _, h, d = q.shape
    hkv = k_cache.shape[2]
    require(k_cache.dtype == q.dtype == v_cache.dtype, f"{op}: q and the caches must share a dtype")
    require(k_cache.shape[3] == d and d in head_dims,
            f"{op}: head dim must be one of {head_dims} and match the cache, got {d}")
    require(h % hkv == 0 and h // hkv <= MAX_GROUP,
            f"{op}: H / Hkv must be an integer <= {MAX_GROUP}, got {h} / {hkv}")


def _check(q, k_cache, v_cache, block_tables, context_lens) -> None:
    require(q.dim() == 3 and q.is_contiguous(), "paged_attention_decode: q must be contiguous [S, H, D]")
    check_caches("paged_attention_decode", q, k_cache, v_cache, HEAD_DIMS)
    s = q.shape[0]
    require(block_tables.dtype == torch.int64 and block_tables.dim() == 2 and block_tables.shape[0] == s
            and block_tables.is_contiguous(), f"paged_attention_decode: block_tables must be contiguous int64 [{s}, MB]")
    require(context_lens.dtype == torch.int64 and context_lens.shape == (s,) and context_lens.is_contiguous(),
            f"paged_attention_decode: context_lens must be contiguous int64 [{s}]")
    require(aligned16(q, k_cache, v_cache), "paged_attention_decode: tensors must start on 16-byte boundaries")


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale: float) -> torch.Tensor:
    """q: [S, H, D]; caches [N, B, Hkv, D]; block_tables [S, MB]; context_lens [S] -> [S, H, D]."""
    _check(q, k_cache, v_cache, block_tables, context_lens)
    s, h, d = q.shape
    _, b, hkv, _ = k_cache.shape
    mb = block_tables.shape[1]
    parts = max(1, -(-(mb * b) // PARTITION))
    out = torch.empty_like(q)
    if s == 0:
        return out
    f32 = dict(dtype=torch.float32, device=q.device)
    part_out = torch.empty(s, h, parts, d, **f32) if parts > 1 else None
    part_max = torch.empty(s, h, parts, **f32) if parts > 1 else None
    part_sum = torch.empty(s, h, parts, **f32) if parts > 1 else None
    tag = dtype_tag(q.dtype)
    launch("paged_attention", f"paged_decode_{tag}_d{d}", q.device, (parts, hkv, s), (128,),
           (ptr(q), ptr(k_cache), ptr(v_cache), ptr(block_tables), ptr(context_lens), ptr(out),
            ptr(part_out), ptr(part_max), ptr(part_sum), np.int32(h), np.int32(hkv), np.int32(b),
            np.int32(mb), np.int32(parts), np.float32(scale)))
    if parts > 1:
        launch("paged_attention", f"paged_decode_reduce_{tag}", q.device, (h, s), (128,),
               (ptr(part_out), ptr(part_max), ptr(part_sum), ptr(context_lens), ptr(out),
                np.int32(h), np.int32(parts), np.int32(d)), shared_mem=4 * parts)
    return out
