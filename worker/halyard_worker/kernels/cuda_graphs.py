"""CUDA graphs of the decode step, one per padded batch size.

Contract with the runner:
- `forward(**inputs)` runs one decode step from tensors only (no host reads
  of device values, no allocation that depends on values) and returns one
  tensor whose first dim is the batch (e.g. hidden states or logits).
- `inputs` are static buffers allocated once with first dim >= the largest
  captured size (`input_ids`, `positions`, `slot_mapping`, `block_tables`
  [max_bs, max_blocks], `context_lens`, ...). Capture runs `forward` on their
  first `size` rows; a replay copies the live batch into those rows and fills
  the padding rows (and any unused block-table columns) with `pad_values`.
- Padding rows must be harmless: slot -1 (the CuPy `write_kv` skips it) and
  context length 0 (the CuPy decode attention writes zeros for it).
- Every kernel module must be loaded before capture: `capture()` runs each
  size eagerly twice on a side stream first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256)


@dataclass(frozen=True)
class GraphPlan:
    """Which batch sizes get a graph (ascending); larger batches run eagerly."""

    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES

    def __post_init__(self):
        if not self.batch_sizes or list(self.batch_sizes) != sorted(set(self.batch_sizes)) or self.batch_sizes[0] < 1:
            raise ValueError(f"batch_sizes must be ascending positive integers, got {self.batch_sizes}")

    def padded(self, n: int) -> int | None:
        """The smallest captured size >= n, or None when n is larger than all of them."""
        return next((size for size in self.batch_sizes if size >= n), None)


class DecodeGraphs:
    """Capture `forward` per padded batch size; `run()` replays (or runs eagerly past the largest)."""

    def __init__(self, forward: Callable, inputs: dict, pad_values: dict, plan: GraphPlan = GraphPlan()):
        largest = plan.batch_sizes[-1]
        for name, buf in inputs.items():
            if buf.shape[0] < largest:
                raise ValueError(f"static input {name!r} has {buf.shape[0]} rows, the largest graph needs {largest}")
        missing = set(inputs) - set(pad_values)
        if missing:
            raise ValueError(f"pad_values lacks {sorted(missing)}")
        self.forward, self.inputs, self.pad_values, self.plan = forward, inputs, pad_values, plan
        self.graphs: dict[int, tuple] = {}

    def capture(self) -> None:
        import torch

        pool = torch.cuda.graph_pool_handle()
        for size in reversed(self.plan.batch_sizes):  # largest first: later graphs reuse its memory
            views = {name: buf[:size] for name, buf in self.inputs.items()}
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.forward(**views)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                out = self.forward(**views)
            self.graphs[size] = (graph, out)

    def run(self, **live):
        """Run one step on the live batch (each tensor's first dim is the batch n)."""
        n = next(iter(live.values())).shape[0]
        size = self.plan.padded(n)
        if size is None or size not in self.graphs:
            return self.forward(**live)
        for name, buf in self.inputs.items():
            src = live[name]
            if buf.dim() == 2 and src.shape[1] < buf.shape[1]:  # e.g. narrower block tables
                buf[:n, src.shape[1]:].fill_(self.pad_values[name])
                buf[:n, :src.shape[1]].copy_(src)
            else:
                buf[:n].copy_(src)
            buf[n:size].fill_(self.pad_values[name])
        graph, out = self.graphs[size]
        graph.replay()
        return out[:n]
