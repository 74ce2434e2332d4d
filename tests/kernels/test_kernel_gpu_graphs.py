"""A decode step built from the CuPy kernels captures into CUDA graphs and replays
with the eager results, padded batches included (GPU only)."""
from __future__ import annotations

import pytest

from kernel_helpers import requires_gpu

torch = pytest.importorskip("torch")

from halyard_worker.kernels import kv_cache, paged_attention, rmsnorm  # noqa: E402
from halyard_worker.kernels.cuda_graphs import DecodeGraphs, GraphPlan  # noqa: E402

pytestmark = [pytest.mark.gpu, requires_gpu]


def test_graph_replay_matches_eager_for_every_batch_size():
    dtype, hkv, group, d, block, mb = torch.bfloat16, 2, 4, 128, 16, 8
    kc = torch.randn(64, block, hkv, d, dtype=dtype, device="cuda")
    vc = torch.randn_like(kc)
    w = torch.randn(hkv * group * d, dtype=dtype, device="cuda")

    def step(q, kv, slot_mapping, block_tables, context_lens):
        kv_cache.write_kv(kc, vc, kv, kv, slot_mapping)
        flat = rmsnorm.rms_norm(q.reshape(q.shape[0], -1), w, 1e-5).reshape(q.shape)
        return paged_attention.paged_attention_decode(flat, kc, vc, block_tables, context_lens, 0.1)

    plan = GraphPlan((1, 2, 4, 8))
    buffers = dict(q=torch.zeros(8, hkv * group, d, dtype=dtype, device="cuda"),
                   kv=torch.zeros(8, hkv, d, dtype=dtype, device="cuda"),
                   slot_mapping=torch.full((8,), -1, dtype=torch.int64, device="cuda"),
                   block_tables=torch.zeros(8, mb, dtype=torch.int64, device="cuda"),
                   context_lens=torch.zeros(8, dtype=torch.int64, device="cuda"))
    pads = dict(q=0, kv=0, slot_mapping=-1, block_tables=0, context_lens=0)
    graphs = DecodeGraphs(step, buffers, pads, plan)
    graphs.capture()
    for n in (1, 3, 8):
        live = dict(q=torch.randn(n, hkv * group, d, dtype=dtype, device="cuda"),
                    kv=torch.randn(n, hkv, d, dtype=dtype, device="cuda"),
                    slot_mapping=torch.arange(n, device="cuda") * block + 5,
                    block_tables=torch.arange(n * 5, device="cuda").reshape(n, 5),
                    context_lens=torch.full((n,), 70, device="cuda"))
        replayed = graphs.run(**live).clone()
        eager = step(**live)
        assert torch.equal(replayed, eager)
