"""Int4 groups with a float zero point, fitted to calibration activations.

A group of `group_size` input weights w_g is stored as 4-bit codes q in 0..15
and a float (scale, zero): w_g ~= (q - zero) * scale, the layout the int4
modules and kernels already take (`quant.Int4Linear`). Unlike plain rounding
(`quant.quantize_int4`, whose zero point is an integer), the zero point here
is not rounded, so the grid's ends sit exactly on the chosen [lo, hi].

The error of a group is its share of the linear's output error on the
calibration inputs: E_x[(x_g . (deq_g - w_g))^2] = d^T G_g d, with G_g the
group's diagonal block of the inputs' second moment X^T X / N (`blocks`).
"""
from __future__ import annotations

import torch

from halyard_worker.model import quant

LEVELS = 15  # 4 bits: codes 0..15


def second_moment(x: torch.Tensor) -> torch.Tensor:
    """x [N, in] -> X^T X / N [in, in] float32."""
    x = x.float()
    return x.T @ x / x.shape[0]


def blocks(gram: torch.Tensor, group_size: int) -> torch.Tensor:
    """Full second moment [in, in] -> its diagonal group blocks [in/group, group, group]."""
    n = gram.shape[0] // group_size
    g = gram.reshape(n, group_size, n, group_size)
    return g[torch.arange(n), :, torch.arange(n), :]


def grouped(w: torch.Tensor, group_size: int) -> torch.Tensor:
    return w.float().reshape(w.shape[0], -1, group_size)


def minmax(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero) whose grid runs from lo (code 0) to hi (code 15)."""
    scale = ((hi - lo) / LEVELS).clamp(min=1e-10)
    return scale, -lo / scale


def codes(wg: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Nearest code of every weight of wg [out, n, group] (float codes 0..15)."""
    return torch.round(wg / scale[..., None] + zero[..., None]).clamp(0, LEVELS)


def group_error(q, scale, zero, wg, blk) -> torch.Tensor:
    """Output error [out, n] of each group's (q - zero) * scale against wg."""
    d = ((q - zero[..., None]) * scale[..., None] - wg).transpose(0, 1)  # [n, out, group]
    return ((d @ blk) * d).sum(-1).T


def refit(q, scale, zero, wg, blk):
    """Least-squares (scale, zero) per group for fixed codes q, weighted by the
    group's block: minimises (a q + b - w)^T G (a q + b - w) over a, b; a
    group keeps its old values where the fit is degenerate (a <= 0)."""
    qt, wt = q.transpose(0, 1), wg.transpose(0, 1)  # [n, out, group]
    gq, gw = qt @ blk, wt @ blk
    m11, m12 = (gq * qt).sum(-1).double(), gq.sum(-1).double()
    m22 = blk.sum((-1, -2))[:, None].double()
    r1, r2 = (gw * qt).sum(-1).double(), gw.sum(-1).double()
    det = m11 * m22 - m12 * m12
    ok = det > 1e-12 * m11 * m22
    a = torch.where(ok, (r1 * m22 - m12 * r2) / torch.where(ok, det, 1.0), 0.0).T
    b = torch.where(ok, (m11 * r2 - m12 * r1) / torch.where(ok, det, 1.0), 0.0).T
    ok = ok.T & (a > 1e-10)
    safe_a = torch.where(ok, a, 1.0)
    return torch.where(ok, a, scale).float(), torch.where(ok, -b / safe_a, zero).float()


def pack(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> dict:
    """Codes [out, n, group] and (scale, zero) [out, n] -> an int4 entry as
    `quant._quantize_weight` gives it (float32 scales and zeros)."""
    return {"qweight": quant.pack_int4(q.reshape(q.shape[0], -1).to(torch.uint8)),
            "scales": scale.float(), "zeros": zero.float()}
