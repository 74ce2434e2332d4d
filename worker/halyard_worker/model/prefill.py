"""All prefill chunks of a step as one varlen batch over the paged KV cache.

`prefill_arrays` (numpy, host) turns the chunks' query and context lengths
into the index arrays both attention paths need; `PrefillBatch` holds them
on the device. The prefill rows of the flat batch are [q_start, q_start + Tp),
sequence i owning `q_lens[i]` consecutive rows, whose positions are the last
`q_lens[i]` of its `ctx_lens[i]` tokens (all already written to the cache).

Two attention paths use it (`ops.paged_attention_prefill`):
- the CUDA kernel (`kernels/prefill_attention.cu`) reads K/V in place from the
  paged cache, one block per (tile of TILE queries of one sequence, KV head);
- the torch path pads the chunks to [P, max_q] and makes one SDPA call. Keys
  come straight from the step's own K/V when no chunk has cached context (a
  fresh prompt: nothing is read back from the cache); otherwise one gather of
  the chunks' blocks serves the whole step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TILE = 4  # queries per block of the prefill kernel; must equal TILE in prefill_attention.cu


def prefill_arrays(q_lens: np.ndarray, ctx_lens: np.ndarray, tables: np.ndarray) -> dict[str, np.ndarray]:
    """q_lens, ctx_lens: [P] int64; tables: [P, W] block ids (W covers the
    longest context) -> the int64 arrays of `PrefillBatch` (see there)."""
    p, lq = len(q_lens), int(q_lens.max())
    total = int(q_lens.sum())
    cu = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(q_lens, out=cu[1:])
    seq = np.repeat(np.arange(p, dtype=np.int64), q_lens)  # [Tp] sequence of each row
    within = np.arange(total, dtype=np.int64) - cu[seq]
    unpad = seq * lq + within
    pad = np.zeros(p * lq, dtype=np.int64)
    pad[unpad] = np.arange(total, dtype=np.int64)
    n_tiles = -(-q_lens // TILE)
    tile_seq = np.repeat(np.arange(p, dtype=np.int64), n_tiles)
    first = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(n_tiles, out=first[1:])
    tile_q = (np.arange(len(tile_seq), dtype=np.int64) - first[tile_seq]) * TILE
    return {"q_lens": q_lens.astype(np.int64), "ctx_lens": ctx_lens.astype(np.int64), "cu_q": cu,
            "block_tables": np.ascontiguousarray(tables, dtype=np.int64), "pad_index": pad.reshape(p, lq),
            "unpad_index": unpad, "tiles": np.stack([tile_seq, tile_q])}


@dataclass(frozen=True)
class PrefillBatch:
    """Device tensors (int64) for P prefill chunks with Tp query rows in all.

    q_lens, ctx_lens: [P]; cu_q: [P + 1] row offsets (from q_start);
    block_tables: [P, W], W * block_size >= max_ctx, padded with valid ids;
    pad_index: [P, max_q] row of each padded query (0 for padding);
    unpad_index: [Tp] position of each row in the padded [P * max_q];
    tiles: [2, NT] (sequence, first query index) of each TILE-query tile.
    max_q, max_ctx, has_prefix (some chunk has cached context) are host values,
    so neither path reads a device tensor back."""

    q_start: int
    num_tokens: int
    max_q: int
    max_ctx: int
    has_prefix: bool
    q_lens: torch.Tensor
    ctx_lens: torch.Tensor
    cu_q: torch.Tensor
    block_tables: torch.Tensor
    pad_index: torch.Tensor
    unpad_index: torch.Tensor
    tiles: torch.Tensor

    @property
    def num_seqs(self) -> int:
        return self.q_lens.shape[0]

    @staticmethod
    def build(q_start: int, q_lens, ctx_lens, tables, to_device) -> "PrefillBatch":
        """From host lengths and tables; `to_device` moves one numpy array."""
        q_lens, ctx_lens = np.asarray(q_lens, dtype=np.int64), np.asarray(ctx_lens, dtype=np.int64)
        arrays = prefill_arrays(q_lens, ctx_lens, np.asarray(tables))
        return PrefillBatch(q_start, int(q_lens.sum()), int(q_lens.max()), int(ctx_lens.max()),
                            bool((ctx_lens > q_lens).any()), **{k: to_device(v) for k, v in arrays.items()})

    @staticmethod
    def single(num_tokens: int, block_table: torch.Tensor) -> "PrefillBatch":
        """One fresh prompt of `num_tokens` at rows [0, num_tokens) (calibration, tests)."""
        device = block_table.device
        return PrefillBatch.build(0, [num_tokens], [num_tokens], block_table.cpu().numpy()[None],
                                  lambda a: torch.from_numpy(a).to(device))
