"""The Llama family decoder (Llama, Llama 3, Mistral, Qwen2) in one file.

Tokens of all sequences in a step are flattened into one batch of T tokens
(varlen); attention reads and writes the paged KV cache through
`AttentionMetadata`. q/k/v and gate/up projections are merged at load
(`qkv_proj`, `gate_up_proj`) so each is one matmul; linears may be swapped
for quantized ones (`model/quant.py`). Hot paths go through `ops`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from halyard_worker.model import ops
from halyard_worker.model.config import ModelConfig, RopeConfig
from halyard_worker.model.prefill import PrefillBatch


@dataclass(frozen=True)
class AttentionMetadata:
    """Where each token's KV goes and what each query attends to.

    The first `num_decodes` tokens are single-token decodes (one per
    sequence); the rest are prefill chunks, all described by `prefill`.
    """

    slot_mapping: torch.Tensor  # [T] int64, flat slot = block * block_size + offset
    num_decodes: int
    decode_block_tables: torch.Tensor | None  # [num_decodes, MB] int64
    decode_context_lens: torch.Tensor | None  # [num_decodes] int64
    prefill: PrefillBatch | None  # rows [num_decodes, T)


def rope_inv_freq(rope: RopeConfig, head_dim: int) -> torch.Tensor:
    """[head_dim / 2] float32 inverse frequencies (llama3 scaling applied)."""
    inv = 1.0 / (rope.theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if rope.rope_type != "llama3":
        return inv
    old = rope.original_max_position_embeddings
    low_wavelen, high_wavelen = old / rope.low_freq_factor, old / rope.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / rope.factor, inv)
    smooth = (old / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [T, head_dim] float32 at `positions` [T] (halves repeated, neox layout).

    The one RoPE table: the engine's cache, the kernels' reference and their tests use it."""
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rope_cache(rope: RopeConfig, head_dim: int, max_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [max_pos, head_dim] float32 for positions 0..max_pos-1."""
    return rope_cos_sin(rope_inv_freq(rope, head_dim), torch.arange(max_pos))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x, residual=None):
        """x -> norm(x); with a residual: (norm(x + residual), x + residual)."""
        if residual is None:
            return ops.rms_norm(x, self.weight, self.eps)
        return ops.fused_add_rms_norm(x, residual, self.weight, self.eps)


class Attention(nn.Module):
    """`c` holds this rank's heads (`ShardPlan.local_config`); with `comm`
    o_proj is row-parallel: its partial sums are all-reduced."""

    def __init__(self, c: ModelConfig, comm=None):
        super().__init__()
        self.comm = comm
        self.h, self.hkv, self.dh = c.num_heads, c.num_kv_heads, c.head_dim
        self.scale = c.scale
        self.qkv_proj = nn.Linear(c.hidden_size, (self.h + 2 * self.hkv) * self.dh, bias=c.qkv_bias)
        self.o_proj = nn.Linear(self.h * self.dh, c.hidden_size, bias=c.o_bias)

    def forward(self, x, cos, sin, kv: tuple[torch.Tensor, torch.Tensor], meta: AttentionMetadata):
        t = x.shape[0]
        qkv = self.qkv_proj(x)  # [T, (H + 2 Hkv) * Dh]
        q, k, v = qkv.split([self.h * self.dh, self.hkv * self.dh, self.hkv * self.dh], dim=-1)
        q = q.reshape(t, self.h, self.dh)  # [T, H, Dh]
        k = k.reshape(t, self.hkv, self.dh)  # [T, Hkv, Dh]
        v = v.reshape(t, self.hkv, self.dh)
        q, k = ops.rotary(q, k, cos, sin)
        k_cache, v_cache = kv  # [N, B, Hkv, Dh] each
        ops.write_kv(k_cache, v_cache, k, v, meta.slot_mapping)
        out = torch.empty_like(q)
        d = meta.num_decodes
        if d:
            out[:d] = ops.paged_attention_decode(
                q[:d], k_cache, v_cache, meta.decode_block_tables, meta.decode_context_lens, self.scale)
        if meta.prefill is not None:  # every prefill chunk of the step in one call
            out[d:] = ops.paged_attention_prefill(q[d:], k[d:], v[d:], k_cache, v_cache, meta.prefill, self.scale)
        return _reduce(self.o_proj(out.reshape(t, self.h * self.dh)), self.comm)


def _reduce(x, comm):
    return x if comm is None else comm.all_reduce(x)


class MLP(nn.Module):
    def __init__(self, c: ModelConfig, comm=None):
        super().__init__()
        self.comm = comm
        self.gate_up_proj = nn.Linear(c.hidden_size, 2 * c.intermediate_size, bias=c.mlp_bias)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=c.mlp_bias)

    def forward(self, x):
        return _reduce(self.down_proj(ops.silu_and_mul(self.gate_up_proj(x))), self.comm)


class DecoderLayer(nn.Module):
    def __init__(self, c: ModelConfig, comm=None):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c, comm)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c, comm)

    def forward(self, x, residual, cos, sin, kv, meta):
        """(x, residual) -> (mlp output, residual stream before it); the residual
        adds are fused into the next RMSNorm (the first layer has none)."""
        if residual is None:
            x, residual = self.input_layernorm(x), x
        else:
            x, residual = self.input_layernorm(x, residual)
        x = self.self_attn(x, cos, sin, kv, meta)
        x, residual = self.post_attention_layernorm(x, residual)
        return self.mlp(x), residual


class LlamaModel(nn.Module):
    """forward(input_ids [T], positions [T], kv_caches, meta) -> hidden [T, hidden];
    compute_logits(hidden [S, hidden]) -> [S, vocab] float32.

    Tensor-parallel (`plan` and `comm` given): `c` is the rank's local config,
    the embedding and lm_head hold the rank's vocabulary rows (`model/tp_layers.py`)."""

    def __init__(self, c: ModelConfig, max_positions: int, plan=None, comm=None):
        super().__init__()
        self.config, self.plan = c, plan
        self.layers = nn.ModuleList(DecoderLayer(c, comm) for _ in range(c.num_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        if comm is None:
            self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
            self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        else:
            from halyard_worker.model.tp_layers import ParallelLMHead, VocabParallelEmbedding

            rows = plan.vocab_per_rank
            self.embed_tokens = VocabParallelEmbedding(rows, c.hidden_size, plan.vocab()[0], comm)
            self.lm_head = ParallelLMHead(c.hidden_size, rows, c.vocab_size, comm)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_cache(c.rope, c.head_dim, max_positions)
        self.register_buffer("rope_cos", cos, persistent=False)  # [P, Dh] float32
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, input_ids, positions, kv_caches, meta: AttentionMetadata):
        x = self.embed_tokens(input_ids)  # [T, hidden]
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]  # [T, Dh]
        residual = None
        for layer, kv in zip(self.layers, kv_caches):
            x, residual = layer(x, residual, cos, sin, kv, meta)
        return self.norm(x, residual)[0]

    def compute_logits(self, hidden):
        return self.lm_head(hidden).float()
