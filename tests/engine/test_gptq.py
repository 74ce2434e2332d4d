"""Error-compensated int4 rounding (GPTQ) on fixed grids and the joint refit."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model import gptq  # noqa: E402
from halyard_worker.model import int4_fit as fit  # noqa: E402
from halyard_worker.model.awq import clip_search, output_error, quantize_calibrated, refine  # noqa: E402
from halyard_worker.model.quant import Int4Linear, dequantize  # noqa: E402


def _correlated(out=48, cols=128, rows=2048, seed=0):
    """A weight and inputs whose channels are correlated, as a trained layer's are."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(out, cols, generator=gen) * 0.05
    mix = 0.3 * torch.eye(cols) + torch.randn(cols, cols, generator=gen) / cols ** 0.5
    x = torch.randn(rows, cols, generator=gen) @ mix
    x[:, :4] *= 8  # a few salient input channels
    return w, x


def _deq(q, scale, zero):
    return ((q - zero[..., None]) * scale[..., None]).reshape(q.shape[0], -1)


def _grid(w, h, group):
    blk = fit.blocks(h, group)
    return refine(w, blk, *clip_search(w, blk, group))


def test_inverse_cholesky_factors_the_damped_inverse():
    _, x = _correlated(cols=32)
    h = fit.second_moment(x)
    u = gptq.inverse_cholesky(h, damp=0.01)
    damped = h.double() + 0.01 * torch.diagonal(h).mean().double() * torch.eye(32, dtype=torch.float64)
    inverse = torch.linalg.inv(damped)  # float64 LAPACK paths differ by CPU: compare at the matrix's scale
    assert torch.allclose(u.T @ u, inverse, rtol=1e-6, atol=1e-6 * inverse.abs().max().item())
    assert torch.equal(u, torch.triu(u))


def test_error_compensation_lowers_the_output_error_of_nearest_rounding_on_the_same_grid():
    w, x = _correlated()
    h = fit.second_moment(x)
    q, scale, zero = _grid(w, h, 32)
    qc = gptq.gptq_codes(w, h, scale, zero)
    nearest, compensated = output_error(_deq(q, scale, zero), w, h), output_error(_deq(qc, scale, zero), w, h)
    assert compensated < 0.8 * nearest
    assert qc.min() >= 0 and qc.max() <= 15 and torch.equal(qc, qc.round())


def test_error_compensated_rounding_is_deterministic_and_block_size_free():
    w, x = _correlated(seed=1)
    h = fit.second_moment(x)
    _, scale, zero = _grid(w, h, 32)
    first = gptq.gptq_codes(w, h, scale, zero)
    assert torch.equal(first, gptq.gptq_codes(w, h, scale, zero))
    assert (first != gptq.gptq_codes(w, h, scale, zero, block=16)).float().mean() < 0.01  # same algorithm, float order


def test_joint_refit_never_worsens_a_row_for_its_codes():
    w, x = _correlated(seed=2)
    h = fit.second_moment(x)
    _, scale, zero = _grid(w, h, 32)
    qc = gptq.gptq_codes(w, h, scale, zero)
    s2, z2 = gptq.refit(qc, w, h, scale, zero)

    def rows(s, z):
        d = _deq(qc, s, z) - w
        return ((d @ h) * d).sum(-1)

    before, after = rows(scale, zero), rows(s2, z2)
    assert (after <= before * (1 + 1e-4) + 1e-12).all()
    assert after.sum() < before.sum()


def test_calibrated_int4_keeps_the_int4_layout_and_beats_the_uncompensated_search():
    w, x = _correlated(seed=3)
    h = fit.second_moment(x)
    entry, input_scale = quantize_calibrated("int4", w, x, 32)
    assert entry["qweight"].dtype == torch.uint8 and entry["qweight"].shape == (48, 64)
    assert entry["scales"].shape == entry["zeros"].shape == (48, 4)
    layer = Int4Linear(128, 48, False, 32)
    layer.qweight, layer.scales, layer.zeros = entry["qweight"], entry["scales"], entry["zeros"]
    if input_scale is not None:
        layer.input_scale = input_scale
    got = layer(x) - x @ w.T
    searched = output_error(dequantize("int4", entry, 32) * (1 if input_scale is None else input_scale), w, h)
    assert torch.allclose(got.pow(2).sum(-1).mean() / 48, torch.tensor(searched), rtol=1e-3)
    uncompensated = output_error(_deq(*_grid(w, h, 32)), w, h)
    assert searched < 0.8 * uncompensated
