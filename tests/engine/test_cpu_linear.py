"""Dense float32 linears packed for the CPU's GEMM (`model/cpu_linear.py`)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from halyard_worker.model.cpu_linear import PackedLinear, pack_for_cpu, uses_cpu_packing  # noqa: E402
from halyard_worker.model.quant import Int8Linear  # noqa: E402

needs_packing = pytest.mark.skipif(not uses_cpu_packing("cpu", torch.float32), reason="torch built without oneDNN")


@needs_packing
@pytest.mark.parametrize("rows", [0, 1, 3, 32, 300])
@pytest.mark.parametrize("bias", [False, True])
def test_a_packed_linear_computes_what_the_plain_one_does(rows, bias):
    torch.manual_seed(rows)
    plain = nn.Linear(96, 40, bias=bias)
    packed = PackedLinear(plain)
    x = torch.randn(rows, 96)
    with torch.inference_mode():
        assert torch.allclose(packed(x), plain(x), atol=1e-5, rtol=1e-5)
    assert torch.equal(packed.weight, plain.weight.detach())  # readers see W [out, in]
    assert isinstance(packed, nn.Linear) and packed.in_features == 96 and packed.out_features == 40


def test_only_cpu_float32_is_packed():
    assert not uses_cpu_packing("cuda", torch.float32)
    assert not uses_cpu_packing("cpu", torch.bfloat16)


@needs_packing
def test_a_cpu_float32_model_packs_its_dense_linears_and_leaves_quantized_ones(tiny_model):
    from halyard_worker.model.loader import load_config, load_model

    cfg = load_config(tiny_model)
    dense = load_model(tiny_model, cfg, torch.float32, "cpu", 64)
    assert isinstance(dense.layers[0].mlp.down_proj, PackedLinear)
    assert isinstance(dense.lm_head, PackedLinear)
    assert not any(type(m) is nn.Linear for m in dense.modules())
    quantized = load_model(tiny_model, cfg, torch.float32, "cpu", 64, "int8")
    assert isinstance(quantized.layers[0].mlp.down_proj, Int8Linear)
    assert isinstance(quantized.lm_head, PackedLinear)  # the lm_head stays in the model dtype


@needs_packing
def test_packing_in_place_keeps_the_model_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    x = torch.randn(5, 16)
    with torch.inference_mode():
        before = model(x)
        after = pack_for_cpu(model)(x)
    assert torch.allclose(before, after, atol=1e-5)
