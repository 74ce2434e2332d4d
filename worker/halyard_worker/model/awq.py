"""Activation-aware weight quantization (AWQ) from calibration inputs.

Every step minimises the output error of one linear with weight w [out, in]
on its calibration inputs x [N, in], E_x ||x (w_hat - w)^T||^2, computed from
the inputs' second moment G = X^T X / N, so every calibration row counts at
no extra cost per candidate (`model/int4_fit.py`). In order:

1. `awq_search`: a per-input-channel scale s_i = mean|x_i|^alpha, alpha from
   `AWQ_GRID` and then refined around the best by `AWQ_REFINE`; the weight is quantized as w * s and the layer divides its
   input by s at run time. alpha = 0 is plain quantization.
2. int4 only, per quantization group, on w * s (with G scaled to match):
   - `clip_search`: the group's range [lo, hi] is shrunk, first hi then lo,
     by a ratio from `CLIP_GRID` (1 = no clipping), and quantized with a float
     zero point so the grid ends exactly on the shrunk range;
   - `refine`: `REFITS` rounds of a least-squares refit of (scale, zero) for
     the chosen codes, then re-rounding to the refitted grid, each kept only
     where it lowers the group's error.
3. int4 only: on those grids, error-compensated rounding (`model/gptq.py`,
   GPTQ under the full G) and a joint refit of each row's scales and zeros
   for its codes.
4. Of plain rounding (`quant._quantize_weight`, no scale), steps 2 and 3
   with the scale s and steps 2 and 3 without it (error-compensated
   rounding often does better unscaled), the candidate with the least
   output error is kept.

So calibration never makes a linear's calibration-set error worse than plain
rounding, nor than the search without error compensation.
"""
from __future__ import annotations

import torch

from halyard_worker.model import gptq
from halyard_worker.model import int4_fit as fit
from halyard_worker.model import quant

AWQ_GRID = tuple(i / 10 for i in range(11))  # 0, 0.1, ..., 1
AWQ_REFINE = (-0.05, 0.05, -0.025, 0.025)  # then around the best: steps of 0.025 (AutoAWQ's are 0.05)
CLIP_GRID = tuple(1 - i / 40 for i in range(21))  # 1.0, 0.975, ..., 0.5 (AutoAWQ's max_shrink 0.5)
REFITS = 3


def output_error(w_hat: torch.Tensor, w: torch.Tensor, gram: torch.Tensor) -> float:
    """E_x ||x (w_hat - w)^T||^2 / out for inputs with second moment gram."""
    d = (w_hat - w).float()
    return ((d @ gram) * d).sum().item() / w.shape[0]


def _minmax_deq(mode: str, w: torch.Tensor, group_size: int) -> torch.Tensor:
    """w quantized without search (int4 with a float zero point) and dequantized."""
    if mode == "int8":
        return quant.dequantize("int8", quant._quantize_weight("int8", w, group_size))
    wg = fit.grouped(w, group_size)
    scale, zero = fit.minmax(wg.amin(-1), wg.amax(-1))
    return ((fit.codes(wg, scale, zero) - zero[..., None]) * scale[..., None]).reshape(w.shape)


def awq_search(mode: str, w: torch.Tensor, x: torch.Tensor, group_size: int,
               gram: torch.Tensor | None = None) -> torch.Tensor | None:
    """Best per-input-channel scale s ([in]) for weight w [out, in] given
    calibration inputs x [N, in]; None when alpha = 0 (no scale) is best."""
    w = w.float()
    gram = fit.second_moment(x) if gram is None else gram
    act = x.float().abs().mean(dim=0).clamp(min=1e-6)

    def error(alpha: float) -> float:
        s = scale_for(act, alpha)
        return output_error(_minmax_deq(mode, w * s[None, :], group_size) / s[None, :], w, gram)

    errors = {alpha: error(alpha) for alpha in AWQ_GRID}
    for step in AWQ_REFINE:
        alpha = min(errors, key=errors.get) + step
        if 0 < alpha < 1 and round(alpha, 4) not in errors:
            errors[round(alpha, 4)] = error(alpha)
    best = min(errors, key=errors.get)
    return None if best == 0 else scale_for(act, best)


def scale_for(act: torch.Tensor, alpha: float) -> torch.Tensor:
    """mean|x|^alpha, normalised so that max * min = 1."""
    s = act.pow(alpha)
    return s / (s.max() * s.min()).sqrt()


def clip_search(w: torch.Tensor, blk: torch.Tensor, group_size: int):
    """Per-group shrink of [lo, hi] from CLIP_GRID (hi first, then lo) with the
    least group error -> (codes [out, n, group], scale, zero [out, n])."""
    wg = fit.grouped(w, group_size)
    lo, hi = wg.amin(-1), wg.amax(-1)
    best = {"err": torch.full(lo.shape, float("inf")), "lo": lo, "hi": hi}
    for end in ("hi", "lo"):
        base = dict(best)
        for r in CLIP_GRID:
            cand = {"lo": base["lo"], "hi": base["hi"]}
            cand[end] = base[end] * r
            scale, zero = fit.minmax(cand["lo"], cand["hi"])
            err = fit.group_error(fit.codes(wg, scale, zero), scale, zero, wg, blk)
            better = err < best["err"]
            best = {k: torch.where(better, v, best[k]) for k, v in (("err", err), *cand.items())}
    scale, zero = fit.minmax(best["lo"], best["hi"])
    return fit.codes(wg, scale, zero), scale, zero


def refine(w: torch.Tensor, blk: torch.Tensor, q, scale, zero, rounds: int = REFITS):
    """Least-squares refits of (scale, zero) and re-rounding, each kept per
    group only where it lowers the group error."""
    wg = fit.grouped(w, w.shape[1] // q.shape[1])
    err = fit.group_error(q, scale, zero, wg, blk)
    for _ in range(rounds):
        s2, z2 = fit.refit(q, scale, zero, wg, blk)
        for q2 in (q, fit.codes(wg, s2, z2)):
            e2 = fit.group_error(q2, s2, z2, wg, blk)
            better = e2 < err
            q = torch.where(better[..., None], q2, q)
            scale, zero, err = torch.where(better, s2, scale), torch.where(better, z2, zero), torch.where(better, e2, err)
    return q, scale, zero


def _int4_candidates(w: torch.Tensor, gram: torch.Tensor, s: torch.Tensor | None, group_size: int):
    """[(entry, s)] for one input scale s (None: none): the clipped and refitted
    nearest rounding, then the same grids rounded with error compensation
    (`model/gptq.py`) and their scales and zeros refitted for those codes."""
    ws, gram_s = (w, gram) if s is None else (w * s[None, :], gram / (s[:, None] * s[None, :]))
    blk = fit.blocks(gram_s, group_size)
    q, scale, zero = refine(ws, blk, *clip_search(ws, blk, group_size))
    qc = gptq.gptq_codes(ws, gram_s, scale, zero)
    return [(fit.pack(q, scale, zero), s), (fit.pack(qc, *gptq.refit(qc, ws, gram_s, scale, zero)), s)]


def _candidates(mode: str, w: torch.Tensor, x: torch.Tensor, group_size: int, gram: torch.Tensor):
    """[(entry, s or None)]: plain rounding, and the searched results with the
    AWQ scale and (int4) without it, the error-compensated rounding preferring
    no scale on some linears."""
    plain = [(quant._quantize_weight(mode, w, group_size), None)]
    s = awq_search(mode, w, x, group_size, gram)
    if mode == "int8":
        return plain + ([] if s is None else [(quant._quantize_weight("int8", w * s[None, :], group_size), s)])
    scaled = [] if s is None else _int4_candidates(w, gram, s, group_size)
    return plain + scaled + _int4_candidates(w, gram, None, group_size)


def quantize_calibrated(mode: str, w: torch.Tensor, x: torch.Tensor, group_size: int):
    """Float w [out, in] and calibration inputs x [N, in] -> (quantized entry
    as `quant._quantize_weight` gives it, input_scale [in] or None): of the
    candidates, the one with the least calibration output error (plain
    rounding on a tie)."""
    w = w.float()
    gram = fit.second_moment(x)

    def error(candidate) -> float:
        entry, s = candidate
        deq = quant.dequantize(mode, entry, group_size)
        return output_error(deq if s is None else deq / s[None, :], w, gram)

    entry, s = min(_candidates(mode, w, x, group_size, gram), key=error)  # min keeps the first on a tie
    return entry, (1.0 / s) if s is not None else None
