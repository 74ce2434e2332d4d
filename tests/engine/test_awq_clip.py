"""AWQ clipping search and the int4 group size, from the flag to the modules."""
from __future__ import annotations

import argparse

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model.awq import (  # noqa: E402
    CLIP_GRID, clip_search, clip_weight, group_gram, quantize_calibrated,
)
from halyard_worker.model.quant import Int4Linear, dequantize, quantize_int4  # noqa: E402


def _group_errors(w, x, g, ratio=None):
    """Per-group output error E_x[(x_g . (q(w_g) - w_g))^2], computed directly over the rows."""
    clipped = w if ratio is None else clip_weight(w, ratio, g)
    packed, s, z = quantize_int4(clipped, g)
    d = (dequantize("int4", {"qweight": packed, "scales": s, "zeros": z}, g) - w).reshape(w.shape[0], -1, g)
    xg = x.reshape(x.shape[0], -1, g)
    return torch.einsum("ngi,ogi->nog", xg, d).pow(2).mean(0)  # [out, groups]


def _heavy_tailed(out=48, cols=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(out, cols, generator=gen) * 0.05
    w[torch.rand(out, cols, generator=gen) < 0.01] *= 12  # rare large weights stretch a group's range
    x = torch.randn(1024, cols, generator=gen)
    return w, x


def test_group_gram_matches_the_rows_it_summarises():
    x = torch.randn(64, 96)
    gram = group_gram(x, 32)
    assert gram.shape == (3, 32, 32)
    assert torch.allclose(gram[1], x[:, 32:64].T @ x[:, 32:64] / 64, atol=1e-5)


def test_clip_search_never_worsens_a_group_and_clips_outlier_groups():
    w, x = _heavy_tailed()
    ratio = clip_search(w, x, 32)
    assert ratio.shape == (48, 4)
    assert all(min(abs(r - c) for c in CLIP_GRID) < 1e-6 for r in ratio.unique().tolist())
    plain, clipped = _group_errors(w, x, 32), _group_errors(w, x, 32, ratio)
    assert (clipped <= plain * (1 + 1e-4) + 1e-9).all()  # ratio 1.0 is in the grid
    assert (ratio < 1).float().mean() > 0.2  # groups with a stretched range get clipped
    assert clipped.sum() < 0.99 * plain.sum()


def test_clip_weight_bounds_each_group_by_its_ratio():
    w = torch.tensor([[-4.0, 1.0, 2.0, 8.0, -1.0, 0.5, 0.25, 1.0]])
    out = clip_weight(w, torch.tensor([[0.5, 1.0]]), 4)
    assert out.tolist() == [[-2.0, 1.0, 2.0, 4.0, -1.0, 0.5, 0.25, 1.0]]


def test_calibrated_int4_has_less_output_error_than_plain_rounding():
    w, x = _heavy_tailed(seed=1)
    x[:, :3] *= 30  # salient input channels
    entry, input_scale = quantize_calibrated("int4", w, x, 32)
    scale = torch.ones(w.shape[1]) if input_scale is None else input_scale
    deq = dequantize("int4", entry, 32)
    calibrated = ((x * scale) @ deq.T - x @ w.T).pow(2).mean()
    packed, s, z = quantize_int4(w, 32)
    plain = (x @ dequantize("int4", {"qweight": packed, "scales": s, "zeros": z}, 32).T - x @ w.T).pow(2).mean()
    assert calibrated < 0.7 * plain


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
