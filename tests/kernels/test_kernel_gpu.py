"""Each CUDA kernel against its torch reference across shapes and dtypes (GPU only)."""
from __future__ import annotations

import math

import pytest

from kernel_helpers import nosync, requires_gpu, tolerance

torch = pytest.importorskip("torch")

from halyard_worker.kernels import (  # noqa: E402
    kv_cache, paged_attention, prefill_attention, quant_gemm, reference, rmsnorm, rotary, silu_mul)
from halyard_worker.model.prefill import PrefillBatch  # noqa: E402

pytestmark = [pytest.mark.gpu, requires_gpu]
DTYPES = [torch.float16, torch.bfloat16]


@pytest.fixture(autouse=True)
def seeded():
    """Launchers run under `nosync`: a host synchronisation inside one fails the test."""
    torch.manual_seed(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,hidden", [(1, 64), (7, 4096), (256, 5120)])
def test_rms_norm(rows, hidden, dtype):
    x, r = torch.randn(rows, hidden, dtype=dtype, device="cuda"), torch.randn(rows, hidden, dtype=dtype, device="cuda")
    w = torch.randn(hidden, dtype=dtype, device="cuda")
    torch.testing.assert_close(nosync(rmsnorm.rms_norm, x, w, 1e-5), reference.rms_norm(x, w, 1e-5), **tolerance(dtype))
    out, h = nosync(rmsnorm.fused_add_rms_norm, x, r, w, 1e-5)
    want_out, want_h = reference.fused_add_rms_norm(x, r, w, 1e-5)
    assert torch.equal(h, want_h)
    torch.testing.assert_close(out, want_out, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,inter", [(1, 128), (33, 14336), (256, 2048)])
def test_silu_and_mul(rows, inter, dtype):
    x = torch.randn(rows, 2 * inter, dtype=dtype, device="cuda")
    torch.testing.assert_close(nosync(silu_mul.silu_and_mul, x), reference.silu_and_mul(x), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,h,hkv,d,factor", [(1, 32, 8, 128, 8.0), (100, 4, 2, 16, 1.0), (37, 16, 16, 64, 1.0)])
def test_rotary_on_strided_qkv_views(tokens, h, hkv, d, factor, dtype):
    qkv = torch.randn(tokens, (h + 2 * hkv) * d, dtype=dtype, device="cuda")
    q, k = qkv[:, :h * d].reshape(tokens, h, d), qkv[:, h * d:(h + hkv) * d].reshape(tokens, hkv, d)
    inv = reference.llama3_inv_freq(500000.0, d, factor=factor).cuda()
    cos, sin = reference.rope_cos_sin(inv, torch.randint(0, 8192, (tokens,), device="cuda"))
    for got, want in zip(nosync(rotary.rotary, q, k, cos, sin), reference.rotary(q, k, cos, sin)):
        torch.testing.assert_close(got, want, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_kv_scatters_and_skips_padding(dtype):
    hkv, d, tokens = 8, 128, 40
    qkv = torch.randn(tokens, (32 + 2 * hkv) * d, dtype=dtype, device="cuda")
    k, v = qkv[:, 32 * d:40 * d].reshape(tokens, hkv, d), qkv[:, 40 * d:].reshape(tokens, hkv, d)
    kc, vc = torch.zeros(64, 16, hkv, d, dtype=dtype, device="cuda"), torch.zeros(64, 16, hkv, d, dtype=dtype, device="cuda")
    slots = torch.randperm(64 * 16, device="cuda")[:tokens]
    want_k, want_v = kc.clone(), vc.clone()
    reference.write_kv(want_k, want_v, k, v, slots)
    slots_padded = torch.cat([slots, torch.full((3,), -1, device="cuda")])
    k_pad, v_pad = torch.cat([k, k[:3]]), torch.cat([v, v[:3]])
    nosync(kv_cache.write_kv, kc, vc, k_pad, v_pad, slots_padded)
    assert torch.equal(kc, want_k) and torch.equal(vc, want_v)


def decode_case(seqs, max_ctx, hkv, group, d, dtype, block=16):
    lens = torch.randint(1, max_ctx + 1, (seqs,), device="cuda")
    lens[0] = max_ctx
    mb = -(-max_ctx // block)
    blocks = seqs * mb + 1
    kc = torch.randn(blocks, block, hkv, d, dtype=dtype, device="cuda")
    vc = torch.randn(blocks, block, hkv, d, dtype=dtype, device="cuda")
    tables = torch.randperm(blocks, device="cuda")[:seqs * mb].reshape(seqs, mb)
    q = torch.randn(seqs, hkv * group, d, dtype=dtype, device="cuda")
    return q, kc, vc, tables, lens


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group", [1, 4, 8])
@pytest.mark.parametrize("seqs,max_ctx,d", [(1, 1, 128), (1, 8192, 128), (7, 257, 64), (64, 2048, 128),
                                            (256, 300, 128), (3, 1000, 16), (2, 513, 256)])
def test_paged_decode_attention(seqs, max_ctx, d, group, dtype):
    hkv = 8 if d >= 64 else 2
    q, kc, vc, tables, lens = decode_case(seqs, max_ctx, hkv, group, d, dtype)
    scale = 1 / math.sqrt(d)
    got = nosync(paged_attention.paged_attention_decode, q, kc, vc, tables, lens, scale)
    torch.testing.assert_close(got, reference.paged_attention_decode(q, kc, vc, tables, lens, scale), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ctx_lens,q_lens,hkv,group,d", [
    ([512, 1, 77], [512, 1, 77], 8, 4, 128),          # fresh prompts of mixed lengths, Llama-3 8B heads
    ([2048, 300, 64], [256, 300, 13], 8, 8, 128),     # later chunks after cached context beside a prompt
    ([33, 200], [33, 40], 2, 1, 64), ([100], [100], 1, 2, 256),
])
def test_varlen_prefill_attention(ctx_lens, q_lens, hkv, group, d, dtype):
    block = 16
    mb = -(-max(ctx_lens) // block)
    kc = torch.randn(len(ctx_lens) * mb + 1, block, hkv, d, dtype=dtype, device="cuda")
    vc = torch.randn_like(kc)
    tables = torch.randperm(kc.shape[0], device="cuda")[:len(ctx_lens) * mb].reshape(len(ctx_lens), mb)
    q = torch.randn(sum(q_lens), hkv * group, d, dtype=dtype, device="cuda")
    rows = [reference.gather_kv(kc, vc, t, c) for t, c in zip(tables, ctx_lens)]
    k = torch.cat([kr[c - n:] for (kr, _), c, n in zip(rows, ctx_lens, q_lens)])
    v = torch.cat([vr[c - n:] for (_, vr), c, n in zip(rows, ctx_lens, q_lens)])
    batch = PrefillBatch.build(0, q_lens, ctx_lens, tables.cpu().numpy(), lambda a: torch.from_numpy(a).cuda())
    scale = 1 / math.sqrt(d)
    got = nosync(prefill_attention.paged_attention_prefill, q, k, v, kc, vc, batch, scale)
    torch.testing.assert_close(got, reference.paged_attention_prefill(q, k, v, kc, vc, batch, scale), **tolerance(dtype))


def assert_linear_close(got, want):
    err = (got.float() - want.float()).abs().max().item()
    assert err <= 2e-2 * want.float().abs().max().item() + 1e-2, f"max error {err}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2, 3, 8, 17, 64])
@pytest.mark.parametrize("n,k", [(4096, 4096), (1000, 14336), (6144, 4096)])
def test_int8_linear(m, n, k, dtype):
    q, s = reference.quantize_int8(torch.randn(n, k, dtype=dtype, device="cuda") * 0.02)
    x, bias = torch.randn(m, k, dtype=dtype, device="cuda"), torch.randn(n, dtype=dtype, device="cuda")
    assert_linear_close(nosync(quant_gemm.int8_linear, x, q, s), reference.int8_linear(x, q, s))
    assert_linear_close(nosync(quant_gemm.int8_linear, x, q, s, bias), reference.int8_linear(x, q, s, bias))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2, 5, 16, 64])
@pytest.mark.parametrize("n,k,group", [(4096, 4096, 128), (1000, 14336, 128), (512, 1024, 32)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_int4_linear(m, n, k, group, symmetric, dtype):
    packed, s, z = reference.quantize_int4(torch.randn(n, k, dtype=dtype, device="cuda") * 0.02, group)
    z = None if symmetric else z
    x = torch.randn(m, k, dtype=dtype, device="cuda")
    assert_linear_close(nosync(quant_gemm.int4_linear, x, packed, s, z, group),
                        reference.int4_linear(x, packed, s, z, group))
