"""Activation-aware weight quantization (AWQ) from calibration inputs.

Two searches, both minimising the output error on the calibration inputs
x [N, in] of one linear with weight w [out, in], in AutoAWQ's order:

1. `awq_search`: a per-input-channel scale s_i = mean|x_i|^alpha, alpha from
   `AWQ_GRID`; the weight is quantized as w * s and the layer divides its
   input by s at run time. alpha = 0 is plain quantization.
2. `clip_search` (int4 only): per quantization group, the range [min, max]
   is shrunk by a ratio from `CLIP_GRID` before rounding, trading a few large
   weights for a finer grid. The ratio minimises the group's own output error
   E_x[(x_g . (q(w_g) - w_g))^2] = d^T (X_g^T X_g / N) d, computed from one
   Gram matrix per group, so every calibration row counts at no extra cost.
   Ratio 1 is no clipping.

Both grids contain the plain choice, so calibration never makes the
calibration-set error of a linear worse.
"""
from __future__ import annotations

import torch

from halyard_worker.model import quant

AWQ_GRID = tuple(i / 10 for i in range(11))
CLIP_GRID = tuple(1 - i / 20 for i in range(11))  # 1.0, 0.95, ..., 0.5 (AutoAWQ's max_shrink 0.5)


def awq_search(mode: str, w: torch.Tensor, x: torch.Tensor, group_size: int) -> torch.Tensor | None:
    """Best per-input-channel scale s ([in]) for weight w [out, in] given
    calibration inputs x [N, in]; None when plain quantization is best."""
    w, x = w.float(), x.float()
    ref = x @ w.T
    act = x.abs().mean(dim=0).clamp(min=1e-6)
    best, best_err = None, float("inf")
    for alpha in AWQ_GRID:
        s = act.pow(alpha)
        s = s / (s.max() * s.min()).sqrt()
        deq = quant.dequantize(mode, quant._quantize_weight(mode, w * s[None, :], group_size), group_size)
        err = ((x / s) @ deq.T - ref).pow(2).mean().item()
        if err < best_err:
            best, best_err = (None if alpha == 0 else s), err
    return best


def group_gram(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """x [N, in] -> per-group second moments [in/group, group, group] = X_g^T X_g / N."""
    xg = x.float().reshape(x.shape[0], -1, group_size).transpose(0, 1)  # [groups, N, group]
    return xg.transpose(1, 2) @ xg / x.shape[0]


def clip_weight(w: torch.Tensor, ratio: torch.Tensor, group_size: int) -> torch.Tensor:
    """w [out, in] with each group clamped to ratio * its [min, max]; ratio [out, in/group]."""
    out, cols = w.shape
    g = w.float().reshape(out, cols // group_size, group_size)
    lo, hi = g.amin(-1) * ratio, g.amax(-1) * ratio
    return torch.minimum(torch.maximum(g, lo[..., None]), hi[..., None]).reshape(out, cols)


def clip_search(w: torch.Tensor, x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Per-group int4 clip ratio [out, in/group] from CLIP_GRID with the least
    output error on calibration inputs x [N, in] (1.0 where clipping does not help)."""
    out, cols = w.shape
    n = cols // group_size
    w = w.float()
    gram = group_gram(x, group_size)
    best_ratio = torch.ones(out, n)
    best_err = torch.full((out, n), float("inf"))
    for r in CLIP_GRID:
        ratio = torch.full((out, n), r)
        deq = quant.dequantize("int4", quant._quantize_weight("int4", clip_weight(w, ratio, group_size),
                                                              group_size), group_size)
        d = (deq - w).reshape(out, n, group_size).transpose(0, 1)  # [groups, out, group]
        err = ((d @ gram) * d).sum(-1).T  # [out, groups]
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_ratio = torch.where(better, ratio, best_ratio)
    return best_ratio


def quantize_calibrated(mode: str, w: torch.Tensor, x: torch.Tensor, group_size: int):
    """Float w [out, in] and calibration inputs x [N, in] -> (quantized entry
    as `quant._quantize_weight` gives it, input_scale [in] or None)."""
    w, x = w.float(), x.float()
    s = awq_search(mode, w, x, group_size)
    if s is not None:
        w, x = w * s[None, :], x / s
    if mode == "int4":
        w = clip_weight(w, clip_search(w, x, group_size), group_size)
    return quant._quantize_weight(mode, w, group_size), (1.0 / s) if s is not None else None
