"""Weight-only int8 / int4 quantization: error bounds and module swap."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model.awq import awq_search  # noqa: E402
from halyard_worker.model.quant import (  # noqa: E402
    Int4Linear, Int8Linear, dequantize, int4_group_size, quantize_int4, quantize_int8,
)

CALIB = "Kubernetes schedules pods onto nodes that have free GPUs. Spot instances are cheaper but can be interrupted."


def test_int8_round_trip_error_is_at_most_half_a_step_per_channel():
    torch.manual_seed(0)
    w = torch.randn(64, 96) * torch.rand(64, 1) * 3
    q, s = quantize_int8(w)
    assert q.dtype == torch.int8 and s.shape == (64,)
    err = (dequantize("int8", {"qweight": q, "scales": s}) - w).abs()
    assert (err <= s[:, None] / 2 + 1e-6).all()


@pytest.mark.parametrize("in_features,group", [(256, 128), (96, 32), (48, 16), (384, 128), (10, 10)])
def test_int4_group_size_choice(in_features, group):
    assert int4_group_size(in_features) == group


def test_int4_round_trip_error_is_bounded_per_group_and_packs_two_per_byte():
    torch.manual_seed(0)
    w = torch.randn(32, 256)
    packed, scales, zeros = quantize_int4(w, 128)
    assert packed.dtype == torch.uint8 and packed.shape == (32, 128)
    assert scales.shape == zeros.shape == (32, 2)
    deq = dequantize("int4", {"qweight": packed, "scales": scales, "zeros": zeros}, 128)
    err = (deq - w).abs().reshape(32, 2, 128)
    assert (err <= scales[..., None] * 0.5 + 1e-5).float().mean() > 0.99
    assert (err <= scales[..., None] + 1e-5).all()


def test_awq_scaling_reduces_error_on_activation_outliers():
    torch.manual_seed(0)
    w = torch.randn(64, 128) * 0.1
    x = torch.randn(512, 128)
    x[:, :4] *= 50  # a few salient input channels, as in real LLM activations
    s = awq_search("int4", w, x, 32)
    assert s is not None

    def out_err(weight, scale):
        packed, sc, z = quantize_int4(weight * scale[None, :], 32)
        deq = dequantize("int4", {"qweight": packed, "scales": sc, "zeros": z}, 32)
        return ((x / scale) @ deq.T - x @ w.T).pow(2).mean().item()

    assert out_err(w, s) < 0.8 * out_err(w, torch.ones(128))


def _logits(llm, ids):
    from halyard_worker.model.calibrate import run_prefill

    model = llm.engine.runner.model
    return model.compute_logits(run_prefill(model, ids))


@pytest.fixture(scope="module")
def reference(tiny_model):
    from halyard_worker import LLM

    llm = LLM(str(tiny_model), dtype="float32")
    ids = llm.tokenizer.encode(CALIB)
    return ids, _logits(llm, ids)


@pytest.mark.parametrize("mode,bound", [("int8", 0.06), ("int4", 0.5)])
def test_quantized_model_logits_stay_close_to_float32(tiny_model, reference, mode, bound):
    from halyard_worker import LLM

    ids, ref = reference
    llm = LLM(str(tiny_model), dtype="float32", quantization=mode)
    model = llm.engine.runner.model
    kind = Int8Linear if mode == "int8" else Int4Linear
    assert isinstance(model.layers[0].self_attn.qkv_proj, kind)
    assert isinstance(model.layers[0].mlp.down_proj, kind)
    assert isinstance(model.lm_head, torch.nn.Linear)  # lm_head stays in the model dtype
    rel = ((_logits(llm, ids) - ref).norm() / ref.norm()).item()
    assert 0 < rel < bound


def test_awq_calibrated_int4_is_no_worse_on_its_calibration_text(tiny_model, reference):
    from halyard_worker.model.loader import load_config, load_model

    ids, ref = reference
    cfg = load_config(tiny_model)

    def rel(calibration):
        model = load_model(tiny_model, cfg, torch.float32, "cpu", 128, "int4", calibration=calibration)
        from halyard_worker.model.calibrate import run_prefill

        out = model.compute_logits(run_prefill(model, ids))
        return ((out - ref).norm() / ref.norm()).item()

    assert rel([ids]) <= rel(None) * 1.05


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_engine_generates(tiny_model, mode):
    from halyard_worker import LLM, SamplingParams

    llm = LLM(str(tiny_model), quantization=mode)
    outs = llm.generate(["Hello world", "The quick"], SamplingParams(temperature=0, max_tokens=6, min_tokens=6))
    assert all(len(o.token_ids) == 6 for o in outs)


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_every_layer_of_a_tiny_model_round_trips_within_bounds(tiny_model_factory, mode):
    from halyard_worker.model.loader import load_config, load_model
    from halyard_worker.model.quant import create_quantized_state_dict, quantizable_linears

    path = tiny_model_factory(arch="qwen2", hidden_size=48, num_heads=3, num_kv_heads=1)
    model = load_model(path, load_config(path), torch.float32, "cpu", 64)
    state = create_quantized_state_dict(model, mode)
    linears = quantizable_linears(model)
    assert len(linears) == 4 * 2  # qkv, o, gate_up, down per layer; lm_head excluded
    for name, lin in linears.items():
        entry = state[name]
        w = lin.weight.float()
        err = (dequantize(mode, entry, entry["group_size"]) - w).abs()
        if mode == "int8":
            bound = entry["scales"][:, None] / 2
        else:
            g = entry["group_size"]
            bound = entry["scales"].repeat_interleave(g, dim=1)  # one step per group
        assert (err <= bound + 1e-6).all(), name
        assert err.mean() < 0.1 * w.abs().mean() * (1 if mode == "int8" else 4), name
