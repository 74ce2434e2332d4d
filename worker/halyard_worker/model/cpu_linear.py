"""Dense linears packed for the CPU's GEMM.

A float32 `nn.Linear` keeps its weight [out, in] and `F.linear` hands it to
the BLAS, which at decode's row counts (a few to a few dozen rows) repacks
the whole weight on every call. Packed once at load into oneDNN's blocked
layout (the reorder torch's own CPU inference path uses), the same product
runs 1.3-2x faster at 2-64 rows and ~1.15x faster at a 1,024-row prefill
chunk, ~15% slower at exactly one row; the packed copy replaces the plain
weight, so memory stays the same (docs/performance.md). Results agree with
`F.linear` within float32 rounding (the sums run in another order).

Only plain dense `nn.Linear`s change (quantized and tensor-parallel layers
keep their own ops), only on CPU and only where this torch has oneDNN:
cuBLAS needs no packing.
"""
from __future__ import annotations

import torch
from torch import nn

ROWS_HINT = 32  # rows the packing is tuned for: a decode batch


class PackedLinear(nn.Linear):
    """y = x W^T + b with W held packed; an `nn.Linear` to every reader
    (`weight` unpacks a plain copy), so quantization and calibration take it
    as they take the plain one."""

    def __init__(self, linear: nn.Linear):
        nn.Module.__init__(self)  # not nn.Linear's: it would allocate a second weight
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().contiguous(), ROWS_HINT)
        self.bias = linear.bias

    @property
    def weight(self) -> torch.Tensor:
        """W [out, in], unpacked (a copy: for readers, not the hot path)."""
        return self.packed.to_dense()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def uses_cpu_packing(device, dtype: torch.dtype) -> bool:
    return (torch.device(device).type == "cpu" and dtype == torch.float32
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def pack_for_cpu(model: nn.Module) -> nn.Module:
    """Swap every plain `nn.Linear` of `model` for a `PackedLinear` (in place)."""
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear:
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, PackedLinear(module))
    return model
