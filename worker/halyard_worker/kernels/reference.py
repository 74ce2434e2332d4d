"""Torch references of the kernels: the ground truth the CUDA kernels are tested against.

Signatures and rounding follow the engine's model ops (`halyard_worker.model.ops`):
every op computes what the CPU path computes, in the same dtype steps.
Shapes: T tokens, H query heads, Hkv KV heads, D head dim, N blocks, B block size.
KV cache per layer: k_cache, v_cache = [N, B, Hkv, D].
"""
from __future__ import annotations

import torch

# The engine's own torch ops are the reference for the kernels that replace them.
from halyard_worker.model import quant
from halyard_worker.model.config import RopeConfig
from halyard_worker.model.llama import rope_cos_sin, rope_inv_freq
from halyard_worker.model.torch_ops import (
    dequant_int4, dequant_int8, gather_kv, int4_linear, int8_linear, paged_attention_decode,
    paged_attention_prefill, paged_attention_prefill_seq, rms_norm, rotary, silu_and_mul, unpack_int4, write_kv,
)

__all__ = ["dequant_int4", "dequant_int8", "fused_add_rms_norm", "gather_kv", "int4_linear", "int8_linear",
           "llama3_inv_freq", "paged_attention_decode", "paged_attention_prefill",
           "paged_attention_prefill_seq", "quantize_int4",
           "quantize_int8", "rms_norm", "rope_cos_sin", "rotary", "silu_and_mul", "unpack_int4", "write_kv"]


def fused_add_rms_norm(x, residual, weight, eps: float):
    """h = x + residual (in x.dtype); returns (rms_norm(h), h)."""
    h = x + residual
    return rms_norm(h, weight, eps), h


def llama3_inv_freq(theta: float, head_dim: int, factor: float = 1.0, low_freq_factor: float = 1.0,
                    high_freq_factor: float = 4.0, original_max_positions: int = 8192) -> torch.Tensor:
    """RoPE inverse frequencies [D/2] float32 with Llama-3 scaling (factor 1 = plain RoPE)."""
    rope = RopeConfig(theta=theta, rope_type="default" if factor == 1.0 else "llama3", factor=factor,
                      low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor,
                      original_max_position_embeddings=original_max_positions)
    return rope_inv_freq(rope, head_dim)


def quantize_int8(w: torch.Tensor):
    """The engine's int8 quantizer (`model.quant`, symmetric per output channel,
    values in [-127, 127]): w [out, in] -> (int8 [out, in], scales [out] in w.dtype,
    as `convert_for_runtime` stores them)."""
    q, scales = quant.quantize_int8(w)
    return q, scales.to(w.dtype)


def quantize_int4(w: torch.Tensor, group_size: int = 128):
    """The engine's int4 quantizer (`model.quant`, asymmetric groups along the input dim):
    w [out, in] -> (packed uint8 [out, in/2], scales, zeros [out, in/G] in w.dtype)."""
    packed, scales, zeros = quant.quantize_int4(w, group_size)
    return packed, scales.to(w.dtype), zeros.to(w.dtype)
