"""int4-awq calibrates each layer on the inputs the already-quantized layers give it."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_each_layer_calibrates_on_the_quantized_model_s_own_inputs(tiny_model, monkeypatch):
    from halyard_worker.model import build
    from halyard_worker.model.calibrate import run_prefill
    from halyard_worker.model.loader import load_config, load_model

    seen = []
    real = build.quantize_weight

    def record(mode, w, x, group_size=128):
        seen.append(x)
        return real(mode, w, x, group_size)

    monkeypatch.setattr(build, "quantize_weight", record)
    ids = list(range(5, 45))
    model = load_model(tiny_model, load_config(tiny_model), torch.float32, "cpu", 64, "int4-awq",
                       calibration=[ids])
    per_layer = len(seen) // len(model.layers)
    got = {}

    def keep(_module, args, _out):
        got["x"] = args[0].detach().clone()

    hook = model.layers[1].self_attn.qkv_proj.register_forward_hook(keep)
    with torch.inference_mode():
        run_prefill(model, ids)
    hook.remove()
    assert torch.allclose(seen[per_layer], got["x"], atol=1e-5)  # layer 1's qkv_proj, fed by quantized layer 0
