"""Weights as a checkpoint hands them to the loader: float tensors or
already-quantized ones in one of Halyard's own layouts.

A `QuantizedWeight` is exactly what an `Int8Linear` / `Int4Linear` holds
(`model/quant.py`), so a pre-quantized checkpoint (GGUF Q4_0/Q4_1/Q8_0, AWQ)
is served with the checkpoint's own values, never re-rounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class QuantizedWeight:
    """A [out, in] weight in Halyard's layout.

    int8: `qweight` int8 [out, in], `scales` [out]; w = qweight * scales.
    int4: `qweight` uint8 [out, in/2] (low nibble = even column), `scales`
    and `zeros` float [out, in/group_size]; w = (q - zeros) * scales.
    """

    mode: str
    qweight: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor | None
    group_size: int

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.qweight.shape
        return rows, cols * (2 if self.mode == "int4" else 1)

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        from halyard_worker.model import torch_ops

        if self.mode == "int8":
            return torch_ops.dequant_int8(self.qweight, self.scales.float(), torch.float32).to(dtype)
        return torch_ops.dequant_int4(self.qweight, self.scales.float(), self.zeros.float(),
                                      self.group_size, torch.float32).to(dtype)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.qweight, self.scales, self.zeros)
                   if t is not None)


Weight = torch.Tensor | QuantizedWeight


def same_layout(parts: list[Weight]) -> bool:
    """True when the parts can be stacked row-wise into one quantized weight."""
    first = parts[0]
    return all(isinstance(p, QuantizedWeight) and p.mode == first.mode
               and p.group_size == first.group_size and p.shape[1] == first.shape[1]
               for p in parts) if isinstance(first, QuantizedWeight) else False


def concat_rows(parts: list[Weight]) -> Weight:
    """Stack weights along the output dim (q/k/v -> qkv, gate/up -> gate_up).

    Quantized parts of one layout stay quantized; any other mix is
    dequantized to float32 first."""
    if same_layout(parts):
        zeros = None if parts[0].zeros is None else torch.cat([p.zeros for p in parts])
        return QuantizedWeight(parts[0].mode, torch.cat([p.qweight for p in parts]),
                               torch.cat([p.scales for p in parts]), zeros, parts[0].group_size)
    return torch.cat([p.dequantize() if isinstance(p, QuantizedWeight) else p for p in parts])


def as_float(weight: Weight, dtype: torch.dtype) -> torch.Tensor:
    return weight.dequantize(dtype) if isinstance(weight, QuantizedWeight) else weight.to(dtype)


def weight_nbytes(weight: Weight) -> int:
    if isinstance(weight, QuantizedWeight):
        return weight.nbytes()
    return weight.numel() * weight.element_size()
