"""The int4-awq search on real SmolLM2-135M-Instruct layers: calibrated on the
built-in calibration text, each linear's output error on different text (the
stdlib's pydoc topics) is lower than plain int4 rounding's."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model.awq import quantize_calibrated  # noqa: E402
from halyard_worker.model.quant import _quantize_weight, dequantize, int4_group_size  # noqa: E402

LINEARS = ("layers.3.self_attn.qkv_proj", "layers.3.self_attn.o_proj", "layers.20.mlp.gate_up_proj",
           "layers.20.mlp.down_proj")


@pytest.fixture(scope="module")
def inputs(smollm2_hf_dir, reference_tokenizer):
    """{linear: (weight, calibration inputs, held-out inputs)} from the float model."""
    from halyard.bench.quality import default_text
    from halyard_worker.model.calibrate import run_prefill
    from halyard_worker.model.calibration_text import default_calibration_texts
    from halyard_worker.model.loader import load_config, load_model

    model = load_model(smollm2_hf_dir, load_config(smollm2_hf_dir), torch.float32, "cpu", 512)
    texts = {"calibration": default_calibration_texts()[:4], "held-out": (default_text()[1][:4000],)}
    seen: dict = {}
    for which, chunks in texts.items():
        hooks = [model.get_submodule(name).register_forward_hook(
            lambda _m, args, _o, name=name, which=which: seen.setdefault((name, which), []).append(args[0]))
            for name in LINEARS]
        try:
            for text in chunks:
                run_prefill(model, reference_tokenizer.encode(text, add_special_tokens=False)[:512])
        finally:
            for h in hooks:
                h.remove()
    return {name: (model.get_submodule(name).weight.detach(), torch.cat(seen[(name, "calibration")]),
                   torch.cat(seen[(name, "held-out")])) for name in LINEARS}


def _error(w, deq, x, input_scale=None):
    xs = x if input_scale is None else x * input_scale
    return ((xs @ deq.T - x @ w.T).pow(2).mean() / (x @ w.T).pow(2).mean()).item()


@pytest.mark.parametrize("group", [128, 64])
@pytest.mark.parametrize("name", LINEARS)
def test_search_lowers_held_out_output_error_of_a_real_layer(inputs, name, group):
    w, calibration, held_out = inputs[name]
    group = int4_group_size(w.shape[1], group)  # as the loader picks it (576 inputs: 64 for 128)
    entry, input_scale = quantize_calibrated("int4", w, calibration, group)
    searched = _error(w, dequantize("int4", entry, group), held_out, input_scale)
    plain = _error(w, dequantize("int4", _quantize_weight("int4", w, group), group), held_out)
    print(f"{name} group {group}: relative output error {searched:.5f} searched, {plain:.5f} plain")
    assert searched < 0.8 * plain
