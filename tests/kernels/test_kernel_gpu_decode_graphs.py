"""The engine's decode CUDA graphs (captured at start-up, padded buckets) give the
same greedy tokens as eager decode steps (GPU only)."""
from __future__ import annotations

import pytest

from kernel_helpers import requires_gpu

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, requires_gpu]

PROMPTS = ["The quick brown fox", "Kubernetes schedules pods", "Hello world!"]  # 3 rows: bucket 4


def run(path, **kwargs):
    from halyard_worker import LLM, SamplingParams

    llm = LLM(model=str(path), dtype="bfloat16", device="cuda", max_num_seqs=8, **kwargs)
    outs = llm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=40, ignore_eos=True))
    return llm, [list(o.token_ids) for o in outs]


def test_graph_replay_matches_eager_decode(tiny_model_factory):
    path = tiny_model_factory(hidden_size=256, intermediate_size=512, num_heads=4, num_kv_heads=1)
    eager_llm, eager = run(path, enforce_eager=True)
    assert eager_llm.engine.runner.graphs is None
    del eager_llm
    graph_llm, graphs = run(path)
    runner = graph_llm.engine.runner
    assert runner.graphs is not None and 4 in runner.graphs.graphs.graphs  # bucket 4 captured
    assert graphs == eager


def test_replay_launches_no_host_sync_beyond_the_sampled_tokens(tiny_model_factory):
    path = tiny_model_factory(hidden_size=256, intermediate_size=512, num_heads=4, num_kv_heads=1)
    llm, _ = run(path)
    runner = llm.engine.runner
    flat = torch.zeros(3, 3, dtype=torch.long, device="cuda")
    flat[2].fill_(-1)
    tables = torch.zeros(3, 1, dtype=torch.long, device="cuda")
    lens = torch.ones(3, dtype=torch.long, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        logits = runner.graphs.run(flat, tables, lens)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert logits.shape[0] == 3 and torch.isfinite(logits).all()
