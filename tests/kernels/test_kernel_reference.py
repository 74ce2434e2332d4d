"""The kernels' torch references against naive loop implementations, and against
the engine's own torch ops (the ground truth of the CPU path)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.kernels import reference as ref  # noqa: E402


def naive_decode(q, k_cache, v_cache, tables, lens, scale):
    """Per sequence, per head: gather tokens one by one, softmax in float64."""
    s, h, d = q.shape
    _, b, hkv, _ = k_cache.shape
    out = torch.zeros(s, h, d, dtype=torch.float64)
    for i in range(s):
        for head in range(h):
            kvh = head // (h // hkv)
            ks = [k_cache[tables[i, t // b], t % b, kvh].double() for t in range(int(lens[i]))]
            vs = [v_cache[tables[i, t // b], t % b, kvh].double() for t in range(int(lens[i]))]
            logits = torch.stack([q[i, head].double() @ kk for kk in ks]) * scale
            p = torch.softmax(logits, dim=0)
            out[i, head] = sum(pj * vj for pj, vj in zip(p, vs))
    return out


@pytest.mark.parametrize("h,hkv", [(4, 4), (8, 2), (8, 1)])
def test_paged_decode_matches_token_by_token_attention(h, hkv):
    g = torch.Generator().manual_seed(0)
    d, b, blocks = 16, 4, 16
    lens = torch.tensor([1, 5, 8, 13], dtype=torch.int64)
    kc = torch.randn(blocks, b, hkv, d, generator=g)
    vc = torch.randn(blocks, b, hkv, d, generator=g)
    tables = torch.randperm(blocks, generator=g)[:16].reshape(4, 4)  # scattered physical blocks
    q = torch.randn(4, h, d, generator=g)
    got = ref.paged_attention_decode(q, kc, vc, tables, lens, 1 / math.sqrt(d))
    torch.testing.assert_close(got.double(), naive_decode(q, kc, vc, tables, lens, 1 / math.sqrt(d)),
                               atol=1e-5, rtol=1e-5)


def test_prefill_last_row_equals_decode_of_the_same_context():
    g = torch.Generator().manual_seed(1)
    kc, vc = torch.randn(6, 4, 2, 16, generator=g), torch.randn(6, 4, 2, 16, generator=g)
    table = torch.tensor([3, 0, 5, 1])
    q = torch.randn(7, 4, 16, generator=g)
    pre = ref.paged_attention_prefill_seq(q, kc, vc, table, 14, 0.25)
    dec = ref.paged_attention_decode(q[-1:], kc, vc, table[None], torch.tensor([14]), 0.25)
    torch.testing.assert_close(pre[-1:], dec, atol=1e-5, rtol=1e-5)
    first = ref.paged_attention_decode(q[:1], kc, vc, table[None], torch.tensor([8]), 0.25)
    torch.testing.assert_close(pre[:1], first, atol=1e-5, rtol=1e-5)  # causal: row 0 sees 8 tokens


def test_write_kv_puts_each_token_in_its_slot():
    kc, vc = torch.zeros(3, 4, 2, 8), torch.zeros(3, 4, 2, 8)
    k, v = torch.randn(3, 2, 8), torch.randn(3, 2, 8)
    slots = torch.tensor([9, 0, 7])
    ref.write_kv(kc, vc, k, v, slots)
    for t, slot in enumerate(slots.tolist()):
        assert torch.equal(kc[slot // 4, slot % 4], k[t]) and torch.equal(vc[slot // 4, slot % 4], v[t])
    assert int((kc.abs().sum(-1).sum(-1) > 0).sum()) == 3


def test_rms_norm_and_fused_residual():
    x, r, w = torch.randn(3, 32), torch.randn(3, 32), torch.randn(32)
    want = torch.stack([w * row / torch.sqrt((row * row).mean() + 1e-6) for row in x + r])
    out, h = ref.fused_add_rms_norm(x, r, w, 1e-6)
    torch.testing.assert_close(h, x + r)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref.rms_norm(x + r, w, 1e-6), out)


def test_rotary_rotates_each_pair_by_position_times_frequency():
    d, inv = 8, ref.llama3_inv_freq(10000.0, 8)
    pos = torch.tensor([0, 3, 100])
    cos, sin = ref.rope_cos_sin(inv, pos)
    q, k = torch.randn(3, 2, d), torch.randn(3, 1, d)
    q2, k2 = ref.rotary(q, k, cos, sin)
    torch.testing.assert_close(q2[0], q[0])  # position 0 is the identity
    for t in range(3):
        for i in range(d // 2):
            a = complex(q[t, 1, i], q[t, 1, i + d // 2]) * complex(math.cos(pos[t] * inv[i]), math.sin(pos[t] * inv[i]))
            assert q2[t, 1, i].item() == pytest.approx(a.real, abs=1e-4)
            assert q2[t, 1, i + d // 2].item() == pytest.approx(a.imag, abs=1e-4)
    torch.testing.assert_close(k2.norm(dim=-1), k.norm(dim=-1))  # rotations keep norms


def test_llama3_scaling_slows_only_low_frequencies():
    plain = ref.llama3_inv_freq(500000.0, 128)
    scaled = ref.llama3_inv_freq(500000.0, 128, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                 original_max_positions=8192)
    wavelen = 2 * math.pi / plain
    assert torch.equal(scaled[wavelen < 8192 / 4], plain[wavelen < 8192 / 4])
    torch.testing.assert_close(scaled[wavelen > 8192], plain[wavelen > 8192] / 8)
    mid = (wavelen >= 2048) & (wavelen <= 8192)
    assert bool(((scaled[mid] <= plain[mid]) & (scaled[mid] >= plain[mid] / 8)).all())


def test_silu_and_mul():
    x = torch.randn(2, 16)
    want = torch.stack([torch.tensor([g / (1 + math.exp(-g)) * u for g, u in zip(r[:8].tolist(), r[8:].tolist())])
                        for r in x])
    torch.testing.assert_close(ref.silu_and_mul(x), want, atol=1e-6, rtol=1e-5)


def test_int8_quantized_linear_tracks_the_float_layer():
    w, x = torch.randn(24, 64), torch.randn(3, 64)
    q, s = ref.quantize_int8(w)
    assert q.dtype == torch.int8 and s.shape == (24,)
    assert (ref.dequant_int8(q, s, torch.float32) - w).abs().max() <= s.max() / 2 + 1e-6
    naive = torch.tensor([[sum(float(x[m, i]) * int(q[n, i]) * float(s[n]) for i in range(64))
                           for n in range(24)] for m in range(3)])
    torch.testing.assert_close(ref.int8_linear(x, q, s), naive, atol=1e-4, rtol=1e-4)


def test_int4_packing_is_low_nibble_first_and_group_wise():
    w = torch.randn(8, 256)
    packed, s, z = ref.quantize_int4(w, 128)
    assert packed.shape == (8, 128) and s.shape == z.shape == (8, 2)
    q = ref.unpack_int4(packed)
    assert torch.equal(q[:, 0::2], packed & 0xF) and torch.equal(q[:, 1::2], packed >> 4)
    err = (ref.dequant_int4(packed, s, z, 128, torch.float32) - w).abs().reshape(8, 2, 128).amax(-1)
    assert bool((err <= s / 2 + 1e-5).all())
    x = torch.randn(2, 256)
    torch.testing.assert_close(ref.int4_linear(x, packed, s, z, 128),
                               x @ ref.dequant_int4(packed, s, z, 128, torch.float32).T)
    sym = ref.dequant_int4(packed, s, None, 128, torch.float32)  # no zeros: zero point 8
    torch.testing.assert_close(sym, ((q.float() - 8).reshape(8, 2, 128) * s[..., None]).reshape(8, 256))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_references_agree_with_the_engine_torch_ops(dtype):
    torch_ops = pytest.importorskip("halyard_worker.model.torch_ops")
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(4, 64, generator=g).to(dtype), torch.randn(64, generator=g).to(dtype)
    assert torch.equal(ref.rms_norm(x, w, 1e-5), torch_ops.rms_norm(x, w, 1e-5))
    gu = torch.randn(4, 32, generator=g).to(dtype)
    assert torch.equal(ref.silu_and_mul(gu), torch_ops.silu_and_mul(gu))
    q, k = torch.randn(4, 4, 16, generator=g).to(dtype), torch.randn(4, 2, 16, generator=g).to(dtype)
    cos, sin = ref.rope_cos_sin(ref.llama3_inv_freq(10000.0, 16), torch.arange(4))
    for a, b in zip(ref.rotary(q, k, cos, sin), torch_ops.rotary(q, k, cos, sin)):
        assert torch.equal(a, b)
    kc, vc = torch.randn(5, 4, 2, 16, generator=g).to(dtype), torch.randn(5, 4, 2, 16, generator=g).to(dtype)
    tables, lens = torch.tensor([[4, 1], [0, 3]]), torch.tensor([7, 3])
    assert torch.equal(ref.paged_attention_decode(q[:2], kc, vc, tables, lens, 0.25),
                       torch_ops.paged_attention_decode(q[:2], kc, vc, tables, lens, 0.25))
    wq, s = ref.quantize_int8(torch.randn(8, 64, generator=g).to(dtype))
    assert torch.equal(ref.int8_linear(x, wq, s), torch_ops.int8_linear(x, wq, s))
    packed, s4, z4 = ref.quantize_int4(torch.randn(8, 64, generator=g).to(dtype), 32)
    assert torch.equal(ref.int4_linear(x, packed, s4, z4, 32), torch_ops.int4_linear(x, packed, s4, z4, 32))


def test_kernels_are_tested_on_the_weights_and_rope_tables_the_engine_makes():
    from halyard_worker.model import llama, quant
    from halyard_worker.model.config import RopeConfig

    w = torch.randn(16, 64, dtype=torch.bfloat16)
    q, s = ref.quantize_int8(w)
    eq, es = quant.quantize_int8(w)
    assert torch.equal(q, eq) and torch.equal(s, es.to(w.dtype)) and int(q.min()) >= -127
    packed, s4, z4 = ref.quantize_int4(w, 32)
    ep, es4, ez4 = quant.quantize_int4(w, 32)
    assert torch.equal(packed, ep) and torch.equal(s4, es4.to(w.dtype)) and torch.equal(z4, ez4.to(w.dtype))
    cos, sin = llama.rope_cache(RopeConfig(theta=10000.0), 16, 32)
    rcos, rsin = ref.rope_cos_sin(ref.llama3_inv_freq(10000.0, 16), torch.tensor([0, 7, 31]))
    assert torch.equal(rcos, cos[[0, 7, 31]]) and torch.equal(rsin, sin[[0, 7, 31]])
