"""Decode CUDA-graph policy on CPU: buckets, fixed-width padding, which steps replay."""
from __future__ import annotations

import numpy as np
import pytest

from halyard_worker.engine.graph_plan import make_plan, pad_decode_inputs, replayable, scratch_bytes


def test_buckets_stop_at_max_num_seqs_and_always_include_it():
    plan = make_plan(max_num_seqs=100, max_model_len=4096, block_size=16)
    assert plan.buckets[-1] == 100 and plan.buckets[:3] == (1, 2, 4)
    assert all(b <= 100 for b in plan.buckets)
    assert plan.table_width == 256
    assert (plan.bucket(1), plan.bucket(3), plan.bucket(65), plan.bucket(100)) == (1, 4, 96, 100)
    assert plan.bucket(101) is None


def test_only_pure_decode_steps_within_the_largest_bucket_replay():
    plan = make_plan(64, 2048, 16)
    assert replayable(5, 5, 0, plan) == 8
    assert replayable(37, 5, 1, plan) is None  # a prefill chunk in the step: eager
    assert replayable(65, 65, 0, plan) is None  # more rows than any graph: eager
    assert replayable(5, 5, 0, None) is None  # --enforce-eager / CPU: no plan


def test_padding_rows_write_nowhere_and_attend_to_nothing():
    tables = np.array([[3, 4], [7, 0]])
    out = pad_decode_inputs(4, 8, ids=np.array([11, 12]), positions=np.array([20, 5]),
                            slots=np.array([68, 117]), tables=tables, lens=np.array([21, 6]))
    assert out["input_ids"].tolist() == [11, 12, 0, 0]
    assert out["slot_mapping"].tolist() == [68, 117, -1, -1]  # padding rows write no KV
    assert out["context_lens"].tolist() == [21, 6, 0, 0]  # and read none
    assert out["block_tables"].shape == (4, 8)  # every bucket has the same table width
    assert out["block_tables"][:2, :2].tolist() == tables.tolist()
    with pytest.raises(ValueError, match="do not fit"):
        pad_decode_inputs(1, 8, np.array([1, 2]), np.array([1, 2]), np.array([1, 2]), tables, np.array([2, 3]))


def test_split_k_scratch_is_sized_for_the_largest_bucket_at_full_width():
    plan = make_plan(256, 8192, 16)  # 8192 tokens -> 32 partitions of 256
    assert scratch_bytes(plan, 16, num_heads=32, head_dim=128) == 4 * 256 * 32 * 32 * 130
    assert scratch_bytes(make_plan(8, 256, 16), 16, 32, 128) == 0  # one partition: no scratch


def test_graphs_are_off_on_cpu_with_enforce_eager_or_torch_attention():
    torch = pytest.importorskip("torch")
    from halyard_worker.engine.graph_runner import graph_blocker

    cuda = torch.device("cuda")
    ops = ("write_kv", "paged_attention_decode", "rms_norm")
    assert graph_blocker(cuda, False, ops) is None
    assert graph_blocker(cuda, True, ops) == "--enforce-eager"
    assert "device is cpu" in graph_blocker(torch.device("cpu"), False, ops)
    assert "paged_attention_decode" in graph_blocker(cuda, False, ("write_kv",))


def test_the_engine_on_cpu_runs_eagerly_and_says_why(tiny_model, caplog):
    from halyard_worker import LLM

    with caplog.at_level("INFO"):
        llm = LLM(str(tiny_model), max_num_seqs=4)
    assert llm.engine.runner.graphs is None
    assert "CUDA graphs off: device is cpu" in caplog.text
    assert "kernels auto -> torch" in caplog.text
