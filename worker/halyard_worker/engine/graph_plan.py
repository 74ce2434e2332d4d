"""Which decode steps replay a CUDA graph, and how a batch is padded to one.

Pure policy (numpy only, no torch): the runner captures one graph per
batch-size bucket at start-up and replays the smallest bucket that holds a
pure-decode step. Every bucket's block table has the same fixed width (the
blocks of `max_model_len`), so a graph never depends on the longest context
of the moment, and the split-K scratch of the decode attention is sized
for that width at capture (counted in the memory budget by `scratch_bytes`).
Padding rows are harmless: KV slot -1 (the kernel's `write_kv` skips it)
and context length 0 (the decode attention writes zeros for it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256)
PARTITION = 256  # tokens per split-K partition of paged_attention.cu
PAD = {"input_ids": 0, "positions": 0, "slot_mapping": -1, "block_tables": 0, "context_lens": 0}


@dataclass(frozen=True)
class GraphPlan:
    """Buckets (ascending batch sizes, the largest <= max_num_seqs) and the
    fixed block-table width every bucket is captured with."""

    buckets: tuple[int, ...]
    table_width: int

    def bucket(self, num_decodes: int) -> int | None:
        """The smallest bucket >= num_decodes, or None (run eagerly)."""
        return next((b for b in self.buckets if b >= num_decodes), None)


def make_plan(max_num_seqs: int, max_model_len: int, block_size: int,
              candidates: tuple[int, ...] = DEFAULT_BUCKETS) -> GraphPlan:
    buckets = tuple(b for b in candidates if b <= max_num_seqs)
    if not buckets or buckets[-1] < max_num_seqs:
        buckets += (max_num_seqs,)
    return GraphPlan(buckets, -(-max_model_len // block_size))


def replayable(num_tokens: int, num_decodes: int, num_prefills: int, plan: GraphPlan | None) -> int | None:
    """The bucket a step replays, or None: only pure-decode steps (one token
    per request, no prefill chunk) no larger than the largest bucket."""
    if plan is None or num_prefills or num_tokens != num_decodes or num_decodes == 0:
        return None
    return plan.bucket(num_decodes)


def pad_decode_inputs(bucket: int, width: int, ids, positions, slots, tables, lens) -> dict[str, np.ndarray]:
    """Live decode inputs (D rows, tables [D, W'] with W' <= width) -> arrays
    of exactly `bucket` rows and `width` table columns, padded with PAD."""
    d = len(ids)
    if d > bucket or tables.shape[1] > width:
        raise ValueError(f"{d} rows x {tables.shape[1]} blocks do not fit bucket {bucket} x {width}")
    out = {name: np.full(bucket, PAD[name], dtype=np.int64) for name in
           ("input_ids", "positions", "slot_mapping", "context_lens")}
    for name, live in (("input_ids", ids), ("positions", positions), ("slot_mapping", slots),
                       ("context_lens", lens)):
        out[name][:d] = live
    table = np.full((bucket, width), PAD["block_tables"], dtype=np.int64)
    table[:d, :tables.shape[1]] = tables
    out["block_tables"] = table
    return out


def scratch_bytes(plan: GraphPlan, block_size: int, num_heads: int, head_dim: int) -> int:
    """float32 split-K scratch of the largest bucket's decode attention
    (partial outputs, maxima and sums: [S, H, P, D] + 2 x [S, H, P])."""
    s = plan.buckets[-1]
    parts = max(1, -(-(plan.table_width * block_size) // PARTITION))
    if parts == 1:
        return 0
    return 4 * s * num_heads * parts * (head_dim + 2)
