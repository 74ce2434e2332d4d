"""AWQ clipping search and the int4 group size, from the flag to the modules."""
from __future__ import annotations

import argparse

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model import int4_fit as fit  # noqa: E402
from halyard_worker.model.awq import CLIP_GRID, clip_search, output_error, quantize_calibrated, refine  # noqa: E402
from halyard_worker.model.quant import Int4Linear, _quantize_weight, dequantize, quantize_int4  # noqa: E402


def _group_errors(w, x, g, q, scale, zero):
    """Per-group output error E_x[(x_g . (deq_g - w_g))^2], computed directly over the rows."""
    d = ((q - zero[..., None]) * scale[..., None]).reshape(w.shape) - w
    xg, dg = x.reshape(x.shape[0], -1, g), d.reshape(w.shape[0], -1, g)
    return torch.einsum("ngi,ogi->nog", xg, dg).pow(2).mean(0)  # [out, groups]


def _minmax(w, g):
    wg = fit.grouped(w, g)
    scale, zero = fit.minmax(wg.amin(-1), wg.amax(-1))
    return fit.codes(wg, scale, zero), scale, zero


def _heavy_tailed(out=48, cols=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(out, cols, generator=gen) * 0.05
    w[torch.rand(out, cols, generator=gen) < 0.01] *= 12  # rare large weights stretch a group's range
    x = torch.randn(1024, cols, generator=gen)
    return w, x


def test_blocks_are_the_diagonal_of_the_second_moment():
    x = torch.randn(64, 96)
    blk = fit.blocks(fit.second_moment(x), 32)
    assert blk.shape == (3, 32, 32)
    assert torch.allclose(blk[1], x[:, 32:64].T @ x[:, 32:64] / 64, atol=1e-5)


def test_group_error_from_the_blocks_matches_the_rows():
    w, x = _heavy_tailed()
    q, scale, zero = _minmax(w, 32)
    from_blocks = fit.group_error(q, scale, zero, fit.grouped(w, 32), fit.blocks(fit.second_moment(x), 32))
    assert torch.allclose(from_blocks, _group_errors(w, x, 32, q, scale, zero), rtol=1e-3, atol=1e-9)


def test_float_zero_point_puts_the_grid_ends_on_the_group_range():
    w, _ = _heavy_tailed()
    q, scale, zero = _minmax(w, 32)
    deq = ((q - zero[..., None]) * scale[..., None])
    wg = fit.grouped(w, 32)
    assert torch.allclose(deq.amin(-1), wg.amin(-1), atol=1e-6) and torch.allclose(deq.amax(-1), wg.amax(-1), atol=1e-6)
    assert (zero != zero.round()).float().mean() > 0.9  # not rounded to an integer


def test_clip_search_never_worsens_a_group_and_clips_outlier_groups():
    w, x = _heavy_tailed()
    blk = fit.blocks(fit.second_moment(x), 32)
    q, scale, zero = clip_search(w, blk, 32)
    plain, clipped = _group_errors(w, x, 32, *_minmax(w, 32)), _group_errors(w, x, 32, q, scale, zero)
    assert (clipped <= plain * (1 + 1e-3) + 1e-9).all()  # ratio 1.0 is in the grid
    wg = fit.grouped(w, 32)
    shrunk = (q - zero[..., None]) * scale[..., None]
    assert ((shrunk.amax(-1) < wg.amax(-1) - 1e-6) | (shrunk.amin(-1) > wg.amin(-1) + 1e-6)).float().mean() > 0.2
    assert clipped.sum() < 0.99 * plain.sum()
    assert min(CLIP_GRID) == 0.5 and max(CLIP_GRID) == 1.0


def test_least_squares_refit_never_worsens_a_group_and_lowers_the_total():
    w, x = _heavy_tailed(seed=2)
    x[:, :3] *= 10  # uneven input energy: the output error is not the weight error
    blk = fit.blocks(fit.second_moment(x), 32)
    start = clip_search(w, blk, 32)
    before = _group_errors(w, x, 32, *start)
    after = _group_errors(w, x, 32, *refine(w, blk, *start))
    assert (after <= before * (1 + 1e-3) + 1e-9).all()
    assert after.sum() < 0.95 * before.sum()


def test_calibrated_int4_has_less_output_error_than_plain_rounding():
    w, x = _heavy_tailed(seed=1)
    x[:, :3] *= 30  # salient input channels
    entry, input_scale = quantize_calibrated("int4", w, x, 32)
    scale = torch.ones(w.shape[1]) if input_scale is None else input_scale
    deq = dequantize("int4", entry, 32)
    calibrated = ((x * scale) @ deq.T - x @ w.T).pow(2).mean()
    packed, s, z = quantize_int4(w, 32)
    plain = (x @ dequantize("int4", {"qweight": packed, "scales": s, "zeros": z}, 32).T - x @ w.T).pow(2).mean()
    assert calibrated < 0.5 * plain


def test_calibration_falls_back_to_plain_rounding_when_the_search_does_not_help():
    gen = torch.Generator().manual_seed(3)
    q = torch.randint(0, 16, (16, 64), generator=gen).float()
    q[:, 0::32], q[:, 1::32] = 0, 15  # every group spans the whole grid
    scales = torch.rand(16, 2, generator=gen) + 0.5
    zeros = torch.randint(0, 16, (16, 2), generator=gen).float()
    w = ((q.reshape(16, 2, 32) - zeros[..., None]) * scales[..., None]).reshape(16, 64)  # on plain rounding's grid
    x = torch.randn(256, 64, generator=gen)
    entry, input_scale = quantize_calibrated("int4", w, x, 32)
    plain = _quantize_weight("int4", w, 32)
    assert input_scale is None
    assert all(torch.equal(entry[k], plain[k]) for k in ("qweight", "scales", "zeros"))
    assert output_error(dequantize("int4", entry, 32), w, fit.second_moment(x)) < 1e-10


@pytest.mark.parametrize("group", [32, 64])
def test_group_size_reaches_every_int4_linear(tiny_model, group):
    from halyard_worker import LLM

    llm = LLM(str(tiny_model), dtype="float32", quantization="int4", quantization_group_size=group)
    sizes = {(m.in_features, m.group_size) for m in llm.engine.runner.model.modules() if isinstance(m, Int4Linear)}
    assert sizes and all(g <= group and cols % g == 0 for cols, g in sizes)
    assert group in {g for _, g in sizes}


def test_smaller_groups_follow_the_float_model_more_closely(tiny_model):
    from halyard_worker.model.calibrate import run_prefill
    from halyard_worker.model.loader import load_config, load_model

    cfg = load_config(tiny_model)
    ids = list(range(5, 45))
    ref = load_model(tiny_model, cfg, torch.float32, "cpu", 64)
    want = ref.compute_logits(run_prefill(ref, ids))

    def rel(group):
        model = load_model(tiny_model, cfg, torch.float32, "cpu", 64, "int4", group_size=group)
        return ((model.compute_logits(run_prefill(model, ids)) - want).norm() / want.norm()).item()

    assert rel(32) < rel(128)


def test_unsupported_group_size_names_the_field_and_the_choices(tiny_model):
    from halyard_worker.engine.types import EngineConfig, InvalidParameter

    with pytest.raises(InvalidParameter, match="quantization_group_size.*32, 64 or 128"):
        EngineConfig(model=str(tiny_model), quantization="int4", quantization_group_size=48)


def _parse(*argv):
    from halyard_worker.server.config import add_serve_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_group_size_flag_reaches_the_engine_config(tiny_model):
    from halyard_worker.server.runtime import engine_config

    config = _parse("--model", str(tiny_model), "--quantization", "int4-awq", "--quantization-group-size", "64")
    assert config.quantization_group_size == 64
    assert engine_config(config).quantization_group_size == 64
    assert engine_config(_parse("--model", str(tiny_model))).quantization_group_size == 128


def test_unsupported_group_size_flag_is_a_usage_error(tiny_model, capsys):
    with pytest.raises(SystemExit):
        _parse("--model", str(tiny_model), "--quantization-group-size", "100")
    assert "--quantization-group-size: must be one of 32, 64, 128" in capsys.readouterr().err


def test_default_calibration_text_is_stdlib_prose_disjoint_from_the_evaluation_text():
    from pydoc_data.topics import topics

    from halyard_worker.model.calibration_text import default_calibration_texts

    texts = default_calibration_texts()
    assert len(texts) == 32 and all(1000 <= len(t) <= 2000 for t in texts)
    assert len(set(texts)) == len(texts)
    evaluated = "\n".join(topics.values())
    paragraphs = [p for t in texts for p in t.split("\n\n") if len(p) > 80]
    assert paragraphs and not any(p in evaluated for p in paragraphs)
    assert sum(t.count(" the ") for t in texts) > 200  # English prose, not code
