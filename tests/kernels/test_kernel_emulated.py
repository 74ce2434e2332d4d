"""The kernels' CUDA C, run on the CPU through a thread-per-CUDA-thread emulator
(`emulator/`), driven by the real launchers and checked against the torch references.

This proves the indexing, reductions, partition merge, dequantization and rounding of
the kernel source without a GPU; it says nothing about speed. Needs a host C++20 compiler.
"""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest

from kernel_helpers import tolerance

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parent / "emulator"))
import emulator  # noqa: E402

from halyard_worker.kernels import (  # noqa: E402
    kv_cache, paged_attention, prefill_attention, quant_gemm, reference, rmsnorm, rotary, silu_mul)
from halyard_worker.model.prefill import PrefillBatch  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the CPU emulator")]
DTYPES = [torch.float16, torch.bfloat16]


@pytest.fixture(autouse=True)
def emulated(monkeypatch):
    emulator.install(monkeypatch)
    torch.manual_seed(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_plain_and_fused(dtype):
    x, r, w = torch.randn(3, 64, dtype=dtype), torch.randn(3, 64, dtype=dtype), torch.randn(64, dtype=dtype)
    torch.testing.assert_close(rmsnorm.rms_norm(x, w, 1e-5), reference.rms_norm(x, w, 1e-5), **tolerance(dtype))
    out, h = rmsnorm.fused_add_rms_norm(x, r, w, 1e-5)
    want_out, want_h = reference.fused_add_rms_norm(x, r, w, 1e-5)
    assert torch.equal(h, want_h)
    torch.testing.assert_close(out, want_out, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_and_mul(dtype):
    x = torch.randn(2, 2 * 24, dtype=dtype)
    torch.testing.assert_close(silu_mul.silu_and_mul(x), reference.silu_and_mul(x), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_on_a_strided_qkv_split_is_bit_exact(dtype):
    qkv = torch.randn(3, (4 + 2 * 2) * 16, dtype=dtype)
    q, k = qkv[:, :64].reshape(3, 4, 16), qkv[:, 64:96].reshape(3, 2, 16)
    inv = reference.llama3_inv_freq(500000.0, 16, factor=8.0, original_max_positions=64)
    cos, sin = reference.rope_cos_sin(inv, torch.tensor([0, 5, 300]))
    for got, want in zip(rotary.rotary(q, k, cos, sin), reference.rotary(q, k, cos, sin)):
        assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_kv_skips_negative_slots(dtype):
    qkv = torch.randn(4, 8 * 16, dtype=dtype)
    k, v = qkv[:, 64:96].reshape(4, 2, 16), qkv[:, 96:].reshape(4, 2, 16)
    kc, vc = torch.zeros(3, 4, 2, 16, dtype=dtype), torch.zeros(3, 4, 2, 16, dtype=dtype)
    want_k, want_v = kc.clone(), vc.clone()
    slots = torch.tensor([7, 0, -1, 10])
    reference.write_kv(want_k, want_v, k[[0, 1, 3]], v[[0, 1, 3]], slots[[0, 1, 3]])
    kv_cache.write_kv(kc, vc, k, v, slots)
    assert torch.equal(kc, want_k) and torch.equal(vc, want_v)


def decode_case(lens, hkv, group, d, dtype, block=16):
    mb = -(-max(lens) // block)
    kc = torch.randn(len(lens) * mb + 2, block, hkv, d, dtype=dtype)
    vc = torch.randn_like(kc)
    tables = torch.randperm(kc.shape[0])[:len(lens) * mb].reshape(len(lens), mb)
    q = torch.randn(len(lens), hkv * group, d, dtype=dtype)
    return q, kc, vc, tables, torch.tensor(lens)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lens,hkv,group,d", [
    ([1, 17, 200], 2, 1, 16),       # one partition: pass 1 writes the output
    ([600, 1, 257], 1, 4, 32),      # three partitions + merge, a 1-token sequence among them
    ([300], 1, 8, 128),             # GQA 8, Llama head dim
])
def test_paged_decode_attention(lens, hkv, group, d, dtype):
    q, kc, vc, tables, ctx = decode_case(lens, hkv, group, d, dtype)
    scale = 1 / math.sqrt(d)
    got = paged_attention.paged_attention_decode(q, kc, vc, tables, ctx, scale)
    torch.testing.assert_close(got, reference.paged_attention_decode(q, kc, vc, tables, ctx, scale), **tolerance(dtype))


def test_paged_decode_zero_length_rows_are_zero():
    q, kc, vc, tables, _ = decode_case([40, 40], 1, 2, 16, torch.bfloat16)
    out = paged_attention.paged_attention_decode(q, kc, vc, tables, torch.tensor([40, 0]), 0.25)
    assert torch.equal(out[1], torch.zeros_like(out[1]))


def prefill_case(ctx_lens, q_lens, hkv, group, d, dtype, block=16):
    """Chunks whose K/V is in a shuffled paged cache: q rows, their k/v rows, caches, batch."""
    mb = -(-max(ctx_lens) // block)
    kc = torch.randn(len(ctx_lens) * mb + 1, block, hkv, d, dtype=dtype)
    vc = torch.randn_like(kc)
    tables = torch.randperm(kc.shape[0])[:len(ctx_lens) * mb].reshape(len(ctx_lens), mb)
    q = torch.randn(sum(q_lens), hkv * group, d, dtype=dtype)
    k_rows, v_rows = [], []
    for table, ctx, n in zip(tables, ctx_lens, q_lens):
        k, v = reference.gather_kv(kc, vc, table, ctx)
        k_rows.append(k[ctx - n:])
        v_rows.append(v[ctx - n:])
    batch = PrefillBatch.build(0, q_lens, ctx_lens, tables.numpy(), torch.from_numpy)
    return q, torch.cat(k_rows), torch.cat(v_rows), kc, vc, batch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ctx_lens,q_lens,hkv,group,d", [
    ([9, 40, 3], [9, 7, 3], 2, 1, 32),    # fresh prompts and a chunk after 33 cached tokens; chunks of 32 keys
    ([21, 5], [2, 5], 1, 8, 64),          # GQA 8: 32 (query, head) pairs per block
    ([18], [18], 1, 2, 256),              # head dim 256: chunks of 16 keys
])
def test_varlen_prefill_attention_matches_torch(ctx_lens, q_lens, hkv, group, d, dtype):
    q, k, v, kc, vc, batch = prefill_case(ctx_lens, q_lens, hkv, group, d, dtype)
    scale = 1 / math.sqrt(d)
    got = prefill_attention.paged_attention_prefill(q, k, v, kc, vc, batch, scale)
    want = reference.paged_attention_prefill(q, k, v, kc, vc, batch, scale)
    torch.testing.assert_close(got, want, **tolerance(dtype))


def assert_linear_close(got, want):
    err = (got.float() - want.float()).abs().max().item()
    assert err <= 2e-2 * want.float().abs().max().item() + 1e-2, f"max error {err}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 3, 9])
def test_int8_linear(m, dtype):
    q, s = reference.quantize_int8(torch.randn(20, 1040, dtype=dtype))  # N not a multiple of 16, K of 512
    x, bias = torch.randn(m, 1040, dtype=dtype), torch.randn(20, dtype=dtype)
    assert_linear_close(quant_gemm.int8_linear(x, q, s, bias), reference.int8_linear(x, q, s, bias))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,symmetric,x_scale", [(1, False, 1.0), (1, True, 1.0), (1, False, 300.0), (2, True, 1.0),
                                                (6, False, 1.0)])
def test_int4_linear(m, symmetric, x_scale, dtype):
    """m = 1 is the packed half2/bfloat162 path; x_scale 300: outlier-sized activations."""
    packed, s, z = reference.quantize_int4(torch.randn(18, 1152, dtype=dtype) * 0.05, 64)
    z = None if symmetric else z
    x = torch.randn(m, 1152, dtype=dtype) * x_scale
    assert_linear_close(quant_gemm.int4_linear(x, packed, s, z, 64), reference.int4_linear(x, packed, s, z, 64))
