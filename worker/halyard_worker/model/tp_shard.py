"""Cut checkpoint weights to one rank's slices (`tp_plan.ShardPlan`).

Float and quantized weights (`weights.QuantizedWeight`) cut the same way:
- rows (column-parallel outputs): qweight, scales and zeros take the rows;
- columns (row-parallel inputs): int8 keeps its per-row scales; int4 takes
  qweight columns / 2 and the scales/zeros of the groups the columns fall
  in. A cut inside a group is regrouped to gcd(group, start, width) columns
  per group with the parent group's scale and zero repeated, so the values
  are exactly the unsharded ones.

`shard_layer` accepts whole or already-sliced weights (a source may read only
its slices); a weight whose shape is the whole one is cut here.
"""
from __future__ import annotations

from dataclasses import replace
from math import gcd

import torch

from halyard_worker.model.tp_plan import COLUMN_PARALLEL, ROW_PARALLEL, ShardPlan
from halyard_worker.model.weights import QuantizedWeight, Weight


def slice_rows(w: Weight, ranges: list[tuple[int, int]]) -> Weight:
    """Rows [a, b) of each range, stacked in order."""
    index = torch.cat([torch.arange(a, b) for a, b in ranges])
    if isinstance(w, torch.Tensor):
        return w[index].contiguous()
    return replace(w, qweight=w.qweight[index].contiguous(), scales=w.scales[index].contiguous(),
                   zeros=None if w.zeros is None else w.zeros[index].contiguous())


def slice_cols(w: Weight, a: int, b: int) -> Weight:
    """Input columns [a, b) of a [out, in] weight."""
    if isinstance(w, torch.Tensor):
        return w[:, a:b].contiguous()
    if w.mode == "int8":
        return replace(w, qweight=w.qweight[:, a:b].contiguous())
    g = gcd(w.group_size, a, b - a) if a else gcd(w.group_size, b - a)
    if g % 2:
        raise ValueError(f"int4 weight columns [{a}, {b}) split a byte; use a smaller tensor-parallel size")
    groups = torch.arange(a, b, g) // w.group_size  # parent group of each new group
    return QuantizedWeight("int4", w.qweight[:, a // 2:b // 2].contiguous(), w.scales[:, groups].contiguous(),
                           w.zeros[:, groups].contiguous(), g)


def merged_ranges(plan: ShardPlan, merged: str) -> list[tuple[int, int]]:
    """Row ranges of this rank inside a merged (qkv / gate_up) whole weight."""
    c, ranges, offset = plan.config, [], 0
    sizes = {"q_proj": c.num_heads * c.head_dim, "k_proj": c.num_kv_heads * c.head_dim,
             "v_proj": c.num_kv_heads * c.head_dim, "gate_proj": c.intermediate_size,
             "up_proj": c.intermediate_size}
    for part in COLUMN_PARALLEL[merged]:
        a, b = plan.rows(part)
        ranges.append((offset + a, offset + b))
        offset += sizes[part.rsplit(".", 1)[1]]
    return ranges


def whole_rows(plan: ShardPlan, merged: str) -> int:
    return merged_ranges(ShardPlan(plan.config), merged)[-1][1]


def shard_layer(weights: dict[str, Weight], plan: ShardPlan, quantize=None) -> dict[str, Weight]:
    """One decoder layer's weights (whole or sliced) -> this rank's.

    `quantize(w) -> QuantizedWeight`, when given, quantizes a whole float
    row-parallel weight before it is cut, so int8's per-row scales are those
    of the whole row (the unsharded model's)."""
    out = dict(weights)
    for merged in COLUMN_PARALLEL:
        for kind in ("weight", "bias"):
            w = out.get(f"{merged}.{kind}")
            if w is not None and w.shape[0] == whole_rows(plan, merged):
                out[f"{merged}.{kind}"] = slice_rows(w, merged_ranges(plan, merged))
    for name in ROW_PARALLEL:
        a, b = plan.cols(name)
        w = out[f"{name}.weight"]
        if w.shape[1] == _whole_cols(plan, name):
            if quantize is not None and isinstance(w, torch.Tensor):
                w = quantize(w)
            out[f"{name}.weight"] = slice_cols(w, a, b)
        bias = out.get(f"{name}.bias")
        if bias is not None and plan.rank:
            out[f"{name}.bias"] = torch.zeros_like(bias)  # added once, on rank 0, before the all-reduce
    return out


def _whole_cols(plan: ShardPlan, name: str) -> int:
    c = plan.config
    return c.num_heads * c.head_dim if "o_proj" in name else c.intermediate_size


def shard_vocab(w: torch.Tensor, plan: ShardPlan) -> torch.Tensor:
    """This rank's vocabulary rows of an embedding / lm_head [V, hidden], zero-padded to V/N rounded up."""
    a, b = plan.vocab()
    rows = w[a:b]
    pad = plan.vocab_per_rank - rows.shape[0]
    if pad:
        rows = torch.cat([rows, rows.new_zeros(pad, rows.shape[1])])
    return rows.contiguous()
