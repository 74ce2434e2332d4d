"""Torch reference ops against plain dense attention (the ground truth kernels test against)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from halyard_worker.model import ops, torch_ops  # noqa: E402
from halyard_worker.model.prefill import PrefillBatch  # noqa: E402


def dense_attention(q, k, v, scale):
    """q: [Tq, H, D] are the last Tq of S positions; k, v: [S, Hkv, D]."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    scores = torch.einsum("thd,shd->hts", q, k) * scale
    tq, s = q.shape[0], k.shape[0]
    mask = torch.arange(s)[None, :] > torch.arange(s - tq, s)[:, None]
    scores.masked_fill_(mask, float("-inf"))
    return torch.einsum("hts,shd->thd", scores.softmax(-1), v)


def paged_cache(seqs_kv, num_blocks=64, block_size=4):
    """Write each sequence's K/V into shuffled blocks; return caches and block tables."""
    hkv, d = seqs_kv[0][0].shape[1:]
    kc = torch.zeros(num_blocks, block_size, hkv, d)
    vc = torch.zeros_like(kc)
    free = torch.randperm(num_blocks).tolist()
    tables = []
    for k, v in seqs_kv:
        n = -(-k.shape[0] // block_size)
        table = [free.pop() for _ in range(n)]
        slots = torch.tensor([table[p // block_size] * block_size + p % block_size for p in range(k.shape[0])])
        torch_ops.write_kv(kc, vc, k, v, slots)
        tables.append(table)
    return kc, vc, tables


def test_decode_matches_dense_for_many_rows_of_mixed_lengths():
    torch.manual_seed(0)
    h, hkv, d, scale = 6, 2, 8, 0.3
    lens = torch.randint(1, 30, (40,)).tolist()
    seqs = [(torch.randn(n, hkv, d), torch.randn(n, hkv, d)) for n in lens]
    kc, vc, tables = paged_cache(seqs, num_blocks=400)
    width = max(len(t) for t in tables)
    bt = torch.tensor([t + [0] * (width - len(t)) for t in tables])
    q = torch.randn(40, h, d)
    out = ops.paged_attention_decode(q, kc, vc, bt, torch.tensor(lens), scale)
    for i, (k, v) in enumerate(seqs):
        ref = dense_attention(q[i:i + 1], k, v, scale)
        torch.testing.assert_close(out[i:i + 1], ref, rtol=1e-5, atol=1e-5)


def test_prefill_chunk_after_cached_context_matches_dense():
    torch.manual_seed(1)
    h, hkv, d, scale = 4, 1, 8, 0.25
    k, v = torch.randn(23, hkv, d), torch.randn(23, hkv, d)
    kc, vc, [table] = paged_cache([(k, v)])
    q = torch.randn(9, h, d)  # the last 9 positions of 23
    out = torch_ops.paged_attention_prefill_seq(q, kc, vc, torch.tensor(table), 23, scale)
    torch.testing.assert_close(out, dense_attention(q, k, v, scale), rtol=1e-5, atol=1e-5)
    full_q = torch.randn(23, h, d)
    out = torch_ops.paged_attention_prefill_seq(full_q, kc, vc, torch.tensor(table), 23, scale)
    torch.testing.assert_close(out, dense_attention(full_q, k, v, scale), rtol=1e-5, atol=1e-5)


def batched_prefill_case(ctx_lens, q_lens, h=4, hkv=2, d=8):
    """Sequences with cached context (ctx > q) and fresh prompts (ctx == q) in one step."""
    seqs = [(torch.randn(n, hkv, d), torch.randn(n, hkv, d)) for n in ctx_lens]
    kc, vc, tables = paged_cache(seqs, num_blocks=80)
    width = max(len(t) for t in tables)
    padded = [t + [0] * (width - len(t)) for t in tables]
    qs = [torch.randn(n, h, d) for n in q_lens]
    k_new = torch.cat([k[c - n:] for (k, _), c, n in zip(seqs, ctx_lens, q_lens)])
    v_new = torch.cat([v[c - n:] for (_, v), c, n in zip(seqs, ctx_lens, q_lens)])
    batch = PrefillBatch.build(0, q_lens, ctx_lens, padded, torch.from_numpy)
    return seqs, qs, k_new, v_new, kc, vc, batch


@pytest.mark.parametrize("ctx_lens,q_lens", [
    ([5, 17, 1, 9], [5, 17, 1, 9]),     # fresh prompts only: keys straight from the step's K/V
    ([23, 6, 40, 3], [9, 6, 1, 3]),     # cached context (later chunks, prefix hits) beside fresh prompts
    ([12], [12]),                       # one fresh prompt
])
def test_batched_prefill_matches_dense_attention_per_sequence(ctx_lens, q_lens):
    torch.manual_seed(2)
    seqs, qs, k_new, v_new, kc, vc, batch = batched_prefill_case(ctx_lens, q_lens)
    out = ops.paged_attention_prefill(torch.cat(qs), k_new, v_new, kc, vc, batch, 0.3)
    assert out.shape == (sum(q_lens), 4, 8)
    for (k, v), q, got in zip(seqs, qs, out.split(q_lens)):
        torch.testing.assert_close(got, dense_attention(q, k, v, 0.3), rtol=1e-5, atol=1e-5)


def test_ops_table_swaps_and_resets():
    calls = []

    def fake(x, weight, eps):
        calls.append(x.shape)
        return x

    ops.use("rms_norm", fake)
    try:
        ops.rms_norm(torch.ones(2, 3), torch.ones(3), 1e-6)
    finally:
        ops.reset()
    assert calls == [(2, 3)]
    assert ops.rms_norm is ops.reference("rms_norm")
    with pytest.raises(KeyError, match="unknown op"):
        ops.use("nope", fake)
