"""Error-compensated rounding of int4 groups (GPTQ) on given grids.

A linear's weight w [out, in] is quantized one input column at a time, in
order; each column's rounding error is pushed onto the columns not yet
quantized so that the linear's output error on the calibration inputs,
d^T H d per output row with H = X^T X / N, stays as small as the remaining
columns can make it (Frantar et al., "GPTQ", 2022). The update uses the
upper Cholesky factor U of H^-1 (U^T U = H^-1): column i's error
e = (w_i - q_i) / U_ii moves the columns j > i by -e U_ij. Columns are
taken in blocks of `BLOCK`, the rest of the matrix updated once per block.

Each group's grid (scale, zero [out, n]) is fixed beforehand (the AWQ clip
search's, `model/awq.py`), so the result has the int4 layout of
`quant.Int4Linear`: only the codes differ from nearest rounding. `refit`
then solves each row's scales and zeros jointly for the chosen codes under
the full H (the errors of a row's groups are correlated by construction).
"""
from __future__ import annotations

import torch

from halyard_worker.model.int4_fit import LEVELS

BLOCK = 128  # columns per lazy update
DAMP = 0.01  # added to H's diagonal, as a fraction of its mean


def inverse_cholesky(h: torch.Tensor, damp: float = DAMP) -> torch.Tensor:
    """H [in, in] -> upper U [in, in] with U^T U = (H + damp * mean(diag H) I)^-1 (float64)."""
    h = h.double().clone()
    dead = torch.diagonal(h) <= 0  # inputs that are always zero: any code will do
    h[dead, dead] = 1.0
    h.diagonal().add_(damp * torch.diagonal(h).mean())
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(hinv, upper=True)


def gptq_codes(w: torch.Tensor, h: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
               block: int = BLOCK, damp: float = DAMP) -> torch.Tensor:
    """Codes [out, n, group] (float, 0..15) for w [out, in] on the grids
    (scale, zero) [out, n], rounded with error compensation under H [in, in]."""
    out, cols = w.shape
    group = cols // scale.shape[1]
    u = inverse_cholesky(h, damp).float()
    s = scale.repeat_interleave(group, dim=1)  # [out, in]: each column's grid
    z = zero.repeat_interleave(group, dim=1)
    w = w.float().clone()
    q = torch.empty_like(w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1, err1, u1 = w[:, i1:i2].clone(), torch.empty(out, i2 - i1), u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            qc = torch.round(w1[:, i] / s[:, c] + z[:, c]).clamp(0, LEVELS)
            e = (w1[:, i] - (qc - z[:, c]) * s[:, c]) / u1[i, i]
            w1[:, i:] -= e[:, None] * u1[i, i:][None, :]
            q[:, c], err1[:, i] = qc, e
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return q.reshape(out, -1, group)


def refit(q: torch.Tensor, w: torch.Tensor, h: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor):
    """Per row, the scales and zeros of all its groups solved together for
    codes q [out, n, group]: least squares of (a_g q + b_g - w)^T H (...)
    over every group's (a_g, b_g). Rows whose solution is degenerate (some
    a_g <= 0) keep (scale, zero). -> (scale, zero) [out, n] float32."""
    out, n, g = q.shape
    hd, wd, qd = h.double(), w.double(), q.double()
    hq = torch.einsum("ong,ngi->oni", qd, hd.reshape(n, g, -1))  # [out, n, in]: (H q_g)^T per group
    m_qq = (hq.reshape(out, n, n, g) * qd[:, None]).sum(-1)  # [out, n, n]
    m_q1 = hq.reshape(out, n, n, g).sum(-1)  # [out, n(q), n(1)]
    m_11 = hd.reshape(n, g, n, g).sum((1, 3)).expand(out, n, n)
    m = torch.cat([torch.cat([m_qq, m_q1], 2), torch.cat([m_q1.transpose(1, 2), m_11], 2)], 1)  # [out, 2n, 2n]
    hw = wd @ hd  # [out, in]
    rhs = torch.cat([(hq * wd[:, None]).sum(-1), hw.reshape(out, n, g).sum(-1)], 1)  # [out, 2n]
    m.diagonal(dim1=1, dim2=2).add_(1e-9 * m.diagonal(dim1=1, dim2=2).mean(-1, keepdim=True))
    sol = torch.linalg.solve(m, rhs[..., None])[..., 0]
    a, b = sol[:, :n], sol[:, n:]
    ok = torch.isfinite(sol).all(-1) & (a > 1e-10).all(-1)
    safe = torch.where(ok[:, None], a, 1.0)
    return (torch.where(ok[:, None], a, scale.double()).float(),
            torch.where(ok[:, None], -b / safe, zero.double()).float())
