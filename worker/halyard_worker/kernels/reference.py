"""Torch references of the kernels: the ground truth the CUDA kernels are tested against.

Signatures and rounding follow the engine's model ops (`halyard_worker.model.ops`):
every op computes what the CPU path computes, in the same dtype steps.
Shapes: T tokens, H query heads, Hkv KV heads, D head dim, N blocks, B block size.
KV cache per layer: k_cache, v_cache = [N, B, Hkv, D].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [T, hidden] -> weight * T(x * rsqrt(mean(x^2) + eps)), variance in float32."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def fused_add_rms_norm(x, residual, weight, eps: float):
    """h = x + residual (in x.dtype); returns (rms_norm(h), h)."""
    h = x + residual
    return rms_norm(h, weight, eps), h


def rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """NeoX-style RoPE. q: [T, H, D], k: [T, Hkv, D], cos/sin: [T, D] float32."""
    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    cos, sin = cos.unsqueeze(1).to(q.dtype), sin.unsqueeze(1).to(q.dtype)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def llama3_inv_freq(theta: float, head_dim: int, factor: float = 1.0, low_freq_factor: float = 1.0,
                    high_freq_factor: float = 4.0, original_max_positions: int = 8192) -> torch.Tensor:
    """RoPE inverse frequencies [D/2] float32 with Llama-3 scaling (factor 1 = plain RoPE)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    if factor == 1.0:
        return inv
    wavelen = 2 * math.pi / inv
    low_wavelen = original_max_positions / low_freq_factor
    high_wavelen = original_max_positions / high_freq_factor
    smooth = (original_max_positions / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * inv / factor + smooth * inv
    out = torch.where(wavelen > low_wavelen, inv / factor, inv)
    mid = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
    return torch.where(mid, smoothed, out)


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor):
    """cos, sin: [T, D] float32 at `positions` [T] (halves repeated, NeoX layout)."""
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


# The engine's torch ops are the reference for these two kernels.
from halyard_worker.model.torch_ops import silu_and_mul, write_kv  # noqa: E402,F401


def gather_kv(k_cache, v_cache, block_table: torch.Tensor, ctx_len: int):
    """One sequence's KV: block_table [MB] -> k, v: [ctx_len, Hkv, D]."""
    _, b, hkv, d = k_cache.shape
    ids = block_table[:-(-ctx_len // b)]
    k = k_cache.index_select(0, ids).reshape(-1, hkv, d)[:ctx_len]
    v = v_cache.index_select(0, ids).reshape(-1, hkv, d)[:ctx_len]
    return k, v


def paged_attention_prefill(q, k_cache, v_cache, block_table, ctx_len: int, scale: float):
    """Causal attention of one sequence's last Tq positions (q: [Tq, H, D]) over its
    `ctx_len` cached tokens, with torch SDPA. Returns [Tq, H, D]."""
    tq = q.shape[0]
    k, v = gather_kv(k_cache, v_cache, block_table, ctx_len)  # [S, Hkv, D]
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [H or Hkv, S, D]
    if tq == ctx_len:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=True)
    else:
        q_pos = torch.arange(ctx_len - tq, ctx_len, device=q.device)
        mask = q_pos[:, None] >= torch.arange(ctx_len, device=q.device)[None, :]  # [Tq, S]
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale, enable_gqa=True)
    return out.transpose(0, 1)


def paged_attention_decode(q, k_cache, v_cache, block_tables, context_lens, scale: float):
    """q: [S, H, D]; block_tables: [S, MB] int64; context_lens: [S] int64 -> [S, H, D] (SDPA, GQA)."""
    s, h, d = q.shape
    _, b, hkv, _ = k_cache.shape
    length = block_tables.shape[1] * b
    flat = block_tables.reshape(-1)
    k = k_cache.index_select(0, flat).view(s, length, hkv, d).transpose(1, 2)  # [S, Hkv, L, D]
    v = v_cache.index_select(0, flat).view(s, length, hkv, d).transpose(1, 2)
    valid = torch.arange(length, device=q.device)[None, :] < context_lens[:, None]  # [S, L]
    out = F.scaled_dot_product_attention(q[:, :, None, :], k, v, attn_mask=valid[:, None, None, :],
                                         scale=scale, enable_gqa=True)  # [S, H, 1, D]
    return out[:, :, 0, :]


def dequant_int8(qweight: torch.Tensor, scales: torch.Tensor, dtype) -> torch.Tensor:
    """qweight: [out, in] int8, scales: [out] -> [out, in] in `dtype`."""
    return qweight.to(dtype) * scales.to(dtype)[:, None]


def int8_linear(x, qweight, scales, bias=None):
    """y = x @ (qweight * scales)^T + bias. x: [T, in] -> [T, out]."""
    return F.linear(x, dequant_int8(qweight, scales, x.dtype), bias)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """packed: [out, in/2] uint8 (low nibble = even column) -> [out, in] uint8 in 0..15."""
    return torch.stack((packed & 0x0F, packed >> 4), dim=-1).reshape(packed.shape[0], -1)


def dequant_int4(packed, scales, zeros, group_size: int, dtype) -> torch.Tensor:
    """scales, zeros: [out, in/group] -> weight [out, in] = (q - zero) * scale (zeros None = 8)."""
    q = unpack_int4(packed).to(dtype)
    out, cols = q.shape
    q = q.reshape(out, cols // group_size, group_size)
    z = torch.full_like(scales, 8, dtype=dtype) if zeros is None else zeros.to(dtype)
    return ((q - z[..., None]) * scales.to(dtype)[..., None]).reshape(out, cols)


def int4_linear(x, packed, scales, zeros, group_size: int, bias=None):
    """y = x @ dequant(packed)^T + bias. x: [T, in] -> [T, out]."""
    return F.linear(x, dequant_int4(packed, scales, zeros, group_size, x.dtype), bias)


def quantize_int8(w: torch.Tensor):
    """Symmetric per-output-channel int8: w [out, in] -> (int8 [out, in], scales [out] in w.dtype)."""
    scales = (w.float().abs().amax(dim=1) / 127.0).clamp(min=1e-8)
    q = torch.round(w.float() / scales[:, None]).clamp(-128, 127).to(torch.int8)
    return q, scales.to(w.dtype)


def quantize_int4(w: torch.Tensor, group_size: int = 128):
    """Asymmetric group-wise int4: w [out, in] -> (packed uint8 [out, in/2], scales, zeros [out, in/G])."""
    out, cols = w.shape
    g = w.float().reshape(out, cols // group_size, group_size)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    scales = ((hi - lo) / 15.0).clamp(min=1e-8)
    zeros = torch.round(-lo / scales).clamp(0, 15)
    q = torch.round(g / scales[..., None] + zeros[..., None]).clamp(0, 15).to(torch.uint8).reshape(out, cols)
    packed = q[:, 0::2] | (q[:, 1::2] << 4)
    return packed, scales.to(w.dtype), zeros.to(w.dtype)
