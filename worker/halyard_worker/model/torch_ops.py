"""Torch reference implementations of the model's hot-path ops.

These are the ground truth: CUDA kernels are tested against them, and they
are what runs on CPU. Shapes: T tokens in the step, H query heads, Hkv KV
heads, Dh head dim, N blocks, B block size.
KV cache per layer: k_cache, v_cache = [N, B, Hkv, Dh].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [T, hidden] -> [T, hidden]; variance in float32 (as transformers)."""
    dtype = x.dtype
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(dtype)


def fused_add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float):
    """h = x + residual -> (rms_norm(h), h); the CUDA kernel does both in one pass."""
    h = x + residual
    return rms_norm(h, weight, eps), h


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Neox-style RoPE. q: [T, H, Dh], k: [T, Hkv, Dh], cos/sin: [T, Dh]."""
    cos = cos.unsqueeze(1).to(q.dtype)
    sin = sin.unsqueeze(1).to(q.dtype)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def silu_and_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up: [T, 2I] (gate then up) -> silu(gate) * up: [T, I]."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def write_kv(k_cache, v_cache, k, v, slot_mapping) -> None:
    """Scatter k, v: [T, Hkv, Dh] into flat slots `slot_mapping`: [T] (int64)."""
    n, b, hkv, dh = k_cache.shape
    k_cache.view(n * b, hkv, dh).index_copy_(0, slot_mapping, k)
    v_cache.view(n * b, hkv, dh).index_copy_(0, slot_mapping, v)


def gather_kv(k_cache, v_cache, block_table: torch.Tensor, ctx_len: int):
    """One sequence's KV: block_table [MB] -> k, v: [ctx_len, Hkv, Dh]."""
    _, b, hkv, dh = k_cache.shape
    n_blocks = -(-ctx_len // b)
    ids = block_table[:n_blocks]
    k = k_cache.index_select(0, ids).reshape(n_blocks * b, hkv, dh)[:ctx_len]
    v = v_cache.index_select(0, ids).reshape(n_blocks * b, hkv, dh)[:ctx_len]
    return k, v


def paged_attention_prefill_seq(q, k_cache, v_cache, block_table, ctx_len: int, scale: float):
    """Causal attention of one sequence's new tokens over its whole context
    (the per-sequence reference the batched op is tested against).

    q: [Tq, H, Dh] are the last Tq positions of a context of `ctx_len`
    tokens whose KV is already in the cache. Returns [Tq, H, Dh].
    """
    tq = q.shape[0]
    k, v = gather_kv(k_cache, v_cache, block_table, ctx_len)  # [S, Hkv, Dh]
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [H or Hkv, S, Dh]
    if tq == ctx_len:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=True)
    else:
        q_pos = torch.arange(ctx_len - tq, ctx_len, device=q.device)
        mask = q_pos[:, None] >= torch.arange(ctx_len, device=q.device)[None, :]  # [Tq, S]
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale, enable_gqa=True)
    return out.transpose(0, 1)


def paged_attention_prefill(q, k, v, k_cache, v_cache, prefill, scale: float):
    """Causal attention of every prefill chunk of a step in one SDPA call.

    q: [Tp, H, Dh], k, v: [Tp, Hkv, Dh] are the step's prefill rows (already
    written to the cache); `prefill` is a `model.prefill.PrefillBatch`.
    Returns [Tp, H, Dh]. Chunks are padded to [P, max_q]; keys are the step's
    own k, v when no chunk has cached context (nothing is read from the
    cache), else one gather of all chunks' blocks [P, W * B]."""
    p, lq = prefill.pad_index.shape
    if p == 1 and not prefill.has_prefix:  # one fresh prompt: plain causal attention
        out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                             is_causal=True, scale=scale, enable_gqa=True)
        return out.transpose(0, 1)
    qp = q[prefill.pad_index]  # [P, Lq, H, Dh]
    if prefill.has_prefix:
        _, b, hkv, dh = k_cache.shape
        flat = prefill.block_tables.reshape(-1)
        length = prefill.block_tables.shape[1] * b
        kp = k_cache.index_select(0, flat).view(p, length, hkv, dh)  # [P, L, Hkv, Dh], L >= max_ctx
        vp = v_cache.index_select(0, flat).view(p, length, hkv, dh)
    else:
        kp, vp, length = k[prefill.pad_index], v[prefill.pad_index], lq
    q_pos = (prefill.ctx_lens - prefill.q_lens)[:, None] + torch.arange(lq, device=q.device)  # [P, Lq]
    mask = torch.arange(length, device=q.device)[None, None, :] <= q_pos[:, :, None]  # [P, Lq, L]
    out = F.scaled_dot_product_attention(qp.transpose(1, 2), kp.transpose(1, 2), vp.transpose(1, 2),
                                         attn_mask=mask[:, None], scale=scale, enable_gqa=True)  # [P, H, Lq, Dh]
    return out.transpose(1, 2).reshape(p * lq, *q.shape[1:])[prefill.unpad_index]


DECODE_GROUP = 16  # rows per SDPA call in the reference decode


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale: float):
    """One new token per sequence. q: [S, H, Dh]; block_tables: [S, MB] (int64,
    padded with any valid block id); context_lens: [S] (int64, includes the
    new token). Returns [S, H, Dh].

    Rows are processed in groups of DECODE_GROUP, each padded only to its own
    longest context (callers sort rows by length to make that count)."""
    s = q.shape[0]
    if s <= DECODE_GROUP:
        return _decode_rows(q, k_cache, v_cache, block_tables, context_lens, scale)
    b = k_cache.shape[1]
    lens = context_lens.tolist()
    out = torch.empty_like(q)
    for start in range(0, s, DECODE_GROUP):
        end = min(start + DECODE_GROUP, s)
        width = -(-max(lens[start:end]) // b)
        out[start:end] = _decode_rows(q[start:end], k_cache, v_cache, block_tables[start:end, :width],
                                      context_lens[start:end], scale)
    return out


def _decode_rows(q, k_cache, v_cache, block_tables, context_lens, scale: float):
    s, h, dh = q.shape
    _, b, hkv, _ = k_cache.shape
    length = block_tables.shape[1] * b
    flat = block_tables.reshape(-1)
    k = k_cache.index_select(0, flat).view(s, length, hkv, dh).transpose(1, 2)  # [S, Hkv, L, Dh]
    v = v_cache.index_select(0, flat).view(s, length, hkv, dh).transpose(1, 2)
    valid = torch.arange(length, device=q.device)[None, :] < context_lens[:, None]  # [S, L]
    out = F.scaled_dot_product_attention(q[:, :, None, :], k, v, attn_mask=valid[:, None, None, :],
                                         scale=scale, enable_gqa=True)  # [S, H, 1, Dh]
    return out[:, :, 0, :]


def dequant_int8(qweight: torch.Tensor, scales: torch.Tensor, dtype) -> torch.Tensor:
    """qweight: [out, in] int8, scales: [out] -> [out, in] in `dtype`."""
    return (qweight.to(dtype) * scales.to(dtype)[:, None])


def int8_linear(x, qweight, scales, bias=None):
    """y = x @ (qweight * scales)^T + bias. x: [T, in] -> [T, out]."""
    return F.linear(x, dequant_int8(qweight, scales, x.dtype), bias)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """packed: [out, in/2] uint8 (low nibble = even column) -> [out, in] uint8 in 0..15."""
    low = packed & 0x0F
    high = packed >> 4
    return torch.stack((low, high), dim=-1).reshape(packed.shape[0], -1)


def dequant_int4(packed, scales, zeros, group_size: int, dtype) -> torch.Tensor:
    """scales, zeros: [out, in/group] -> weight [out, in] = (q - zero) * scale
    (zeros None: symmetric, zero point 8)."""
    q = unpack_int4(packed).to(dtype)
    out, cols = q.shape
    q = q.reshape(out, cols // group_size, group_size)
    z = torch.full_like(scales, 8, dtype=dtype) if zeros is None else zeros.to(dtype)
    w = (q - z[..., None]) * scales.to(dtype)[..., None]
    return w.reshape(out, cols)


def int4_linear(x, packed, scales, zeros, group_size: int, bias=None):
    """y = x @ dequant(packed)^T + bias. x: [T, in] -> [T, out]."""
    return F.linear(x, dequant_int4(packed, scales, zeros, group_size, x.dtype), bias)
