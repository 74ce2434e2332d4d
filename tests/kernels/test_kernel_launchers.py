"""The launchers refuse bad arguments with a message naming the parameter, before
any kernel is loaded, so a wrong call never reaches the GPU. Runs on CPU."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.kernels import kv_cache, paged_attention, quant_gemm, reference, rmsnorm, rotary, silu_mul  # noqa: E402

BF16 = torch.bfloat16


def decode_args(h=8, hkv=2, d=128, table_dtype=torch.int64):
    q = torch.zeros(2, h, d, dtype=BF16)
    kc = torch.zeros(4, 16, hkv, d, dtype=BF16)
    return q, kc, kc.clone(), torch.zeros(2, 3, dtype=table_dtype), torch.ones(2, dtype=torch.int64)


@pytest.mark.parametrize("change,message", [
    (dict(d=48), "head dim must be one of"),
    (dict(h=32, hkv=2), "H / Hkv must be an integer <= 8"),
    (dict(h=6, hkv=4), "H / Hkv"),
    (dict(table_dtype=torch.int32), "block_tables must be contiguous int64"),
])
def test_paged_decode_rejects(change, message):
    with pytest.raises(ValueError, match=message):
        paged_attention.paged_attention_decode(*decode_args(**change), 0.1)


def test_paged_decode_rejects_mismatched_cache_dtype():
    q, kc, vc, t, lens = decode_args()
    with pytest.raises(ValueError, match="share a dtype"):
        paged_attention.paged_attention_decode(q.half(), kc, vc, t, lens, 0.1)


def test_valid_arguments_on_cpu_ask_for_cuda():
    with pytest.raises(ValueError, match="need CUDA tensors, got device cpu"):
        paged_attention.paged_attention_decode(*decode_args(), 0.1)
    with pytest.raises(ValueError, match="need CUDA tensors"):
        rmsnorm.rms_norm(torch.zeros(2, 64, dtype=BF16), torch.ones(64, dtype=BF16), 1e-5)


def test_float32_is_refused_by_name():
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        silu_mul.silu_and_mul(torch.zeros(2, 32))


def test_rms_norm_checks_weight_and_residual():
    x = torch.zeros(2, 64, dtype=BF16)
    with pytest.raises(ValueError, match=r"weight must be contiguous \[64\]"):
        rmsnorm.rms_norm(x, torch.ones(32, dtype=BF16), 1e-5)
    with pytest.raises(ValueError, match="residual must match x"):
        rmsnorm.fused_add_rms_norm(x, torch.zeros(2, 32, dtype=BF16), torch.ones(64, dtype=BF16), 1e-5)
    with pytest.raises(ValueError, match="multiple of 8"):
        rmsnorm.rms_norm(torch.zeros(2, 12, dtype=BF16), torch.ones(12, dtype=BF16), 1e-5)


def test_rotary_checks_layout_and_cos_sin():
    q, k = torch.zeros(3, 4, 16, dtype=BF16), torch.zeros(3, 2, 16, dtype=BF16)
    with pytest.raises(ValueError, match="cos must be contiguous \\[3, 16\\] float32"):
        rotary.rotary(q, k, torch.zeros(3, 16, dtype=BF16), torch.zeros(3, 16))
    with pytest.raises(ValueError, match="q must have packed heads"):
        rotary.rotary(q.transpose(0, 1).contiguous().transpose(0, 1), k, torch.zeros(3, 16), torch.zeros(3, 16))


def test_write_kv_accepts_a_strided_qkv_view_but_checks_slots():
    qkv = torch.zeros(3, (4 + 2 * 2) * 16, dtype=BF16)
    k = qkv[:, 64:96].reshape(3, 2, 16)
    v = qkv[:, 96:].reshape(3, 2, 16)
    kc = torch.zeros(4, 16, 2, 16, dtype=BF16)
    with pytest.raises(ValueError, match="slot_mapping must be a contiguous int64"):
        kv_cache.write_kv(kc, kc.clone(), k, v, torch.zeros(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="need CUDA tensors"):  # the view itself is fine
        kv_cache.write_kv(kc, kc.clone(), k, v, torch.zeros(3, dtype=torch.int64))


def test_int4_group_size_and_scales_shape():
    x = torch.zeros(1, 256, dtype=BF16)
    packed = torch.zeros(8, 128, dtype=torch.uint8)
    with pytest.raises(ValueError, match="group_size must divide in=256, got 100"):
        quant_gemm.int4_linear(x, packed, torch.ones(8, 3, dtype=BF16), None, 100)
    with pytest.raises(ValueError, match=r"scales and zeros must be \[8, 2\]"):
        quant_gemm.int4_linear(x, packed, torch.ones(8, 4, dtype=BF16), None, 128)


def test_int8_checks_weight_layout():
    x = torch.zeros(1, 40, dtype=BF16)
    with pytest.raises(ValueError, match="qweight must be contiguous int8"):
        quant_gemm.int8_linear(x, torch.zeros(8, 40, dtype=torch.uint8), torch.ones(8, dtype=BF16))
    with pytest.raises(ValueError, match=r"x must be a contiguous tensor \[T, 64\]"):
        quant_gemm.int8_linear(x, torch.zeros(8, 64, dtype=torch.int8), torch.ones(8, dtype=BF16))


def test_shapes_outside_the_kernels_take_the_torch_path():
    """int8 with in % 16 != 0 and int4 groups below 32 (small models) must still work."""
    x = torch.randn(2, 40)
    q, s = reference.quantize_int8(torch.randn(8, 40))
    torch.testing.assert_close(quant_gemm.int8_linear(x, q, s), reference.int8_linear(x, q, s))
    packed, s4, z4 = reference.quantize_int4(torch.randn(8, 48), 16)
    x = torch.randn(2, 48)
    torch.testing.assert_close(quant_gemm.int4_linear(x, packed, s4, z4, 16),
                               reference.int4_linear(x, packed, s4, z4, 16))


def test_batches_above_the_gemv_range_use_dequantize_and_matmul():
    x = torch.randn(quant_gemm.MAX_M + 1, 64)
    q, s = reference.quantize_int8(torch.randn(16, 64))
    torch.testing.assert_close(quant_gemm.int8_linear(x, q, s), reference.int8_linear(x, q, s))
