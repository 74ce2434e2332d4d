"""CUDA graphs of the decode step, captured at start-up (runner side, torch).

One graph per batch-size bucket of `graph_plan.GraphPlan`, all with the
same fixed block-table width; `kernels.cuda_graphs.DecodeGraphs` owns the
static input buffers, copies a live batch into them and pads the rest. A
captured graph runs embeddings, every layer and the logits of all rows, so a
decode step is one replay instead of ~15 launches per layer. Only graph-safe
ops may be captured: the CuPy `write_kv` (skips slot -1) and decode attention
(no host reads of device values); `graph_blocker` says why not otherwise.
"""
from __future__ import annotations

import logging

import torch

from halyard_worker.engine.graph_plan import PAD, GraphPlan
from halyard_worker.model.llama import AttentionMetadata

log = logging.getLogger(__name__)

GRAPH_SAFE_OPS = ("write_kv", "paged_attention_decode")


def graph_blocker(device: torch.device, enforce_eager: bool, cupy_ops: tuple[str, ...]) -> str | None:
    """Why decode steps must run eagerly, or None when graphs can be captured."""
    if enforce_eager:
        return "--enforce-eager"
    if device.type != "cuda":
        return f"device is {device.type}"
    missing = [op for op in GRAPH_SAFE_OPS if op not in cupy_ops]
    if missing:
        return f"{', '.join(missing)} run on torch (not capturable: host reads, no padding slot)"
    return None


class GraphRunner:
    """run(flat [3, D], tables [D, W], lens [D]) -> logits [D, V] float32 by replay."""

    def __init__(self, model, kv_caches, plan: GraphPlan, device: torch.device):
        from halyard_worker.kernels.cuda_graphs import DecodeGraphs, GraphPlan as Sizes

        self.model, self.kv_caches, self.plan = model, kv_caches, plan
        n = plan.buckets[-1]
        long = dict(dtype=torch.long, device=device)
        inputs = {"input_ids": torch.zeros(n, **long), "positions": torch.zeros(n, **long),
                  "slot_mapping": torch.full((n,), PAD["slot_mapping"], **long),
                  "block_tables": torch.zeros(n, plan.table_width, **long),
                  "context_lens": torch.zeros(n, **long)}
        self.graphs = DecodeGraphs(self._forward, inputs, PAD, Sizes(plan.buckets))

    def _forward(self, input_ids, positions, slot_mapping, block_tables, context_lens):
        meta = AttentionMetadata(slot_mapping=slot_mapping, num_decodes=input_ids.shape[0],
                                 decode_block_tables=block_tables, decode_context_lens=context_lens, prefill=None)
        return self.model.compute_logits(self.model(input_ids, positions, self.kv_caches, meta))

    @torch.inference_mode()
    def capture(self) -> None:
        self.graphs.capture()
        log.info("CUDA graphs captured for decode batch sizes %s (block tables %d wide)",
                 ",".join(map(str, self.plan.buckets)), self.plan.table_width)

    def run(self, flat: torch.Tensor, tables: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return self.graphs.run(input_ids=flat[0], positions=flat[1], slot_mapping=flat[2],
                               block_tables=tables, context_lens=lens)
