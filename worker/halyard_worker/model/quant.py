"""Weight-only quantization as a module swap (gpt-fast style).

- int8: per-output-channel symmetric. `qweight` int8 [out, in], `scales` [out];
  w ~= qweight * scales.
- int4: group-wise asymmetric along the input dim. `qweight` uint8
  [out, in/2] holds two 4-bit values per byte (low nibble = even column);
  `scales`, `zeros` [out, in/group]; w ~= (q - zero) * scale. Group size is
  128 by default (32 or 64 on request: `INT4_GROUP_SIZES`); when
  `in_features` is not a multiple of it, the largest smaller one of 64, 32,
  16, 8 that divides `in_features` is used, else one group per row.
- AWQ (when calibration token ids are given): per linear, an
  activation-aware input-channel scale (`input_scale` = 1/s, applied at run
  time) and, for int4, a per-group clipping of the weight range with a
  float zero point and a least-squares refit, then error-compensated
  rounding (GPTQ) on those grids, all searched on the calibration
  activations (`model/awq.py`, `model/int4_fit.py`, `model/gptq.py`).
- lm_head and embeddings stay in the model dtype.

`create_quantized_state_dict()` computes the quantized tensors from a float
model; `convert_for_runtime()` swaps `nn.Linear`s for the quantized modules;
`quantize_model()` does both.
"""
from __future__ import annotations

import torch
from torch import nn

from halyard_worker.model import ops
from halyard_worker.options import INT4_DEFAULT_GROUP_SIZE

INT4_GROUP_SIZE = INT4_DEFAULT_GROUP_SIZE


def int4_group_size(in_features: int, preferred: int = INT4_GROUP_SIZE) -> int:
    for g in (preferred, 64, 32, 16, 8):
        if g <= preferred and in_features % g == 0:
            return g
    return in_features


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w: [out, in] float -> (qweight int8 [out, in], scales float32 [out])."""
    w = w.float()
    scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


def quantize_int4(w: torch.Tensor, group_size: int):
    """w: [out, in] float -> (packed uint8 [out, in/2], scales, zeros float32 [out, in/group])."""
    out, cols = w.shape
    if cols % 2:
        raise ValueError(f"int4 needs an even in_features, got {cols}")
    g = w.float().reshape(out, cols // group_size, group_size)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    scales = ((hi - lo) / 15).clamp(min=1e-8)
    zeros = torch.round(-lo / scales).clamp(0, 15)
    q = torch.round(g / scales[..., None] + zeros[..., None]).clamp(0, 15).to(torch.uint8)
    return pack_int4(q.reshape(out, cols)), scales, zeros


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Codes uint8 [out, in] (0..15) -> two per byte [out, in/2], low nibble = even column."""
    return q[:, 0::2] | (q[:, 1::2] << 4)


class Int8Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool, dtype=torch.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scales", torch.ones(out_features, dtype=dtype))
        self.register_buffer("input_scale", None)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype), requires_grad=False) if bias else None

    def forward(self, x):
        if self.input_scale is not None:
            x = x * self.input_scale
        return ops.int8_linear(x, self.qweight, self.scales, self.bias)


class Int4Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int, dtype=torch.float32):
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        n_groups = in_features // group_size
        self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
        self.register_buffer("scales", torch.ones(out_features, n_groups, dtype=dtype))
        self.register_buffer("zeros", torch.zeros(out_features, n_groups, dtype=dtype))
        self.register_buffer("input_scale", None)
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype), requires_grad=False) if bias else None

    def forward(self, x):
        if self.input_scale is not None:
            x = x * self.input_scale
        return ops.int4_linear(x, self.qweight, self.scales, self.zeros, self.group_size, self.bias)


def quantizable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear except the lm_head."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not name.endswith("lm_head")}


def dequantize(mode: str, tensors: dict, group_size: int | None = None) -> torch.Tensor:
    """The float weight a quantized state represents (for error checks)."""
    from halyard_worker.model import torch_ops

    if mode == "int8":
        return torch_ops.dequant_int8(tensors["qweight"], tensors["scales"], torch.float32)
    return torch_ops.dequant_int4(tensors["qweight"], tensors["scales"], tensors["zeros"], group_size,
                                  torch.float32)


def _quantize_weight(mode: str, w: torch.Tensor, group_size: int) -> dict:
    if mode == "int8":
        q, s = quantize_int8(w)
        return {"qweight": q, "scales": s}
    q, s, z = quantize_int4(w, group_size)
    return {"qweight": q, "scales": s, "zeros": z}


def create_quantized_state_dict(model: nn.Module, mode: str, group_size: int = INT4_GROUP_SIZE,
                                activations: dict[str, torch.Tensor] | None = None) -> dict:
    """Quantized tensors for every quantizable linear, keyed by module name."""
    if mode not in ("int8", "int4"):
        raise ValueError(f"quantization must be int8 or int4, got {mode!r}")
    state = {}
    for name, lin in quantizable_linears(model).items():
        w = lin.weight.detach()
        g = int4_group_size(lin.in_features, group_size)
        if activations and name in activations:
            from halyard_worker.model.awq import quantize_calibrated

            entry, input_scale = quantize_calibrated(mode, w, activations[name], g)
        else:
            entry, input_scale = _quantize_weight(mode, w, g), None
        entry["input_scale"] = input_scale
        entry["group_size"] = g
        state[name] = entry
    return state


def convert_for_runtime(model: nn.Module, mode: str, state: dict) -> nn.Module:
    """Swap each quantized nn.Linear for Int8Linear/Int4Linear holding `state`."""
    for name, lin in quantizable_linears(model).items():
        entry = state[name]
        dtype, has_bias = lin.weight.dtype, lin.bias is not None
        if mode == "int8":
            new = Int8Linear(lin.in_features, lin.out_features, has_bias, dtype)
        else:
            new = Int4Linear(lin.in_features, lin.out_features, has_bias, entry["group_size"], dtype)
        new = new.to(lin.weight.device)
        for key in ("qweight", "scales", "zeros"):
            if key in entry:
                value = entry[key].to(lin.weight.device)
                setattr(new, key, value if key == "qweight" else value.to(dtype))
        if entry["input_scale"] is not None:
            new.input_scale = entry["input_scale"].to(device=lin.weight.device, dtype=dtype)
        if has_bias:
            new.bias.data = lin.bias.data
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model


def quantize_model(model: nn.Module, mode: str, calibration: list[list[int]] | None = None,
                   group_size: int = INT4_GROUP_SIZE) -> nn.Module:
    """Quantize in place; with calibration token ids, AWQ-style scaling."""
    activations = None
    if calibration:
        from halyard_worker.model.calibrate import capture_linear_inputs

        activations = capture_linear_inputs(model, calibration)
    return convert_for_runtime(model, mode, create_quantized_state_dict(model, mode, group_size, activations))
