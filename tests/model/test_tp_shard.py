"""Tensor-parallel splits: which slices a rank holds, and that cutting
(float, int8, int4) keeps exactly the unsharded values."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from halyard_worker.model import quant
from halyard_worker.model.config import ModelConfig, RopeConfig
from halyard_worker.model.tp_plan import ShardPlan, check_tensor_parallel
from halyard_worker.model.tp_shard import merged_ranges, shard_layer, shard_vocab, slice_cols, slice_rows
from halyard_worker.model.weights import QuantizedWeight


def config(heads=4, kv=2, dh=8, inter=32, vocab=50) -> ModelConfig:
    return ModelConfig("LlamaForCausalLM", vocab, heads * dh, inter, 1, heads, kv, dh, 64, 1e-6,
                       RopeConfig(), False, False, False, False, "float32", (), None)


def test_heads_and_kv_heads_per_rank():
    plans = [ShardPlan(config(heads=8, kv=4), r, 2) for r in range(2)]
    assert [p.q_heads() for p in plans] == [(0, 4), (4, 8)]
    assert [p.kv_heads() for p in plans] == [(0, 2), (2, 4)]


def test_fewer_kv_heads_than_ranks_replicates_the_kv_head_each_rank_reads():
    plans = [ShardPlan(config(heads=4, kv=2), r, 4) for r in range(4)]
    assert [p.kv_heads() for p in plans] == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert all(p.local_config().num_kv_heads == 1 and p.local_config().num_heads == 1 for p in plans)


def test_vocab_is_padded_to_a_multiple_of_the_ranks():
    plans = [ShardPlan(config(vocab=50), r, 4) for r in range(4)]
    assert [p.vocab() for p in plans] == [(0, 13), (13, 26), (26, 39), (39, 50)]
    w = torch.arange(50 * 3, dtype=torch.float32).reshape(50, 3)
    parts = [shard_vocab(w, p) for p in plans]
    assert all(part.shape == (13, 3) for part in parts)
    assert torch.equal(torch.cat(parts)[:50], w) and not parts[-1][11:].any()


def test_a_size_that_does_not_divide_the_heads_is_refused_naming_the_flag_and_the_choices():
    with pytest.raises(ValueError) as err:
        check_tensor_parallel(config(heads=9, kv=3, dh=64, inter=1536), 2)
    message = str(err.value)
    assert "--tensor-parallel-size" in message and "spec.resources.gpus" in message
    assert "9 attention heads" in message and "use one of 1, 3, 9" in message


def test_merged_qkv_rows_of_a_rank():
    plan = ShardPlan(config(heads=4, kv=2, dh=8), 1, 2)  # q rows 32, k rows 16, v rows 16
    assert merged_ranges(plan, "self_attn.qkv_proj") == [(16, 32), (40, 48), (56, 64)]
    assert merged_ranges(plan, "mlp.gate_up_proj") == [(16, 32), (48, 64)]


def _int4(w, g):
    q, s, z = quant.quantize_int4(w, g)
    return QuantizedWeight("int4", q, s, z, g)


@pytest.mark.parametrize("a,b", [(0, 64), (64, 128), (16, 32), (48, 80), (96, 128)])
def test_int4_column_cut_keeps_the_values_even_inside_a_group(a, b):
    w = torch.randn(6, 128, generator=torch.Generator().manual_seed(0))
    whole = _int4(w, 64)
    cut = slice_cols(whole, a, b)
    assert torch.equal(cut.dequantize(), whole.dequantize()[:, a:b])


def test_int8_column_cut_keeps_the_whole_row_scales():
    q, s = quant.quantize_int8(torch.randn(5, 32))
    whole = QuantizedWeight("int8", q, s, None, 0)
    assert torch.equal(slice_cols(whole, 8, 24).dequantize(), whole.dequantize()[:, 8:24])
    assert torch.equal(slice_rows(whole, [(1, 3)]).dequantize(), whole.dequantize()[1:3])


def test_row_parallel_bias_is_added_by_rank_zero_only():
    c = replace(config(), o_bias=True)
    weights = {"self_attn.o_proj.weight": torch.randn(32, 32), "self_attn.o_proj.bias": torch.ones(32),
               "mlp.down_proj.weight": torch.randn(32, 32)}
    ranks = [shard_layer(weights, ShardPlan(c, r, 2)) for r in range(2)]
    assert ranks[0]["self_attn.o_proj.bias"].sum() == 32 and not ranks[1]["self_attn.o_proj.bias"].any()
    full = weights["self_attn.o_proj.weight"]
    assert torch.equal(torch.cat([r["self_attn.o_proj.weight"] for r in ranks], dim=1), full)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a.mode == b.mode and a.group_size == b.group_size and all(
        torch.equal(x, y) for x, y in ((a.qweight, b.qweight), (a.scales, b.scales), (a.zeros, b.zeros)))


@pytest.mark.parametrize("rank", [0, 2])
def test_gguf_layer_read_as_slices_equals_the_whole_layer_cut(smollm2_gguf, rank):
    from halyard_worker.model.gguf_source import GGUFSource

    source = GGUFSource(smollm2_gguf)  # Q4_1 linears, 9 heads / 3 KV heads (permuted q/k rows)
    plan = ShardPlan(source.config, rank, 3)
    sliced = source.layer_weights(0, plan)
    assert sliced["self_attn.o_proj.weight"].shape == (576, 192)  # only this rank's columns decoded
    expected = shard_layer(source.layer_weights(0), plan)
    assert sorted(sliced) == sorted(expected)
    assert all(_same(sliced[n], expected[n]) for n in expected)
