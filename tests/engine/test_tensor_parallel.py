"""Tensor parallelism on CPU (gloo, one process per rank): greedy outputs of
TP=2 and TP=4 equal TP=1 token for token, float and int8/int4.

Column-parallel layers and the vocab-parallel embedding/lm_head compute the
same numbers as TP=1; the two all-reduces per layer sum the row-parallel
partial products in another order (float rounding only), which the tiny
models' greedy choices do not notice.
"""
from __future__ import annotations

import pytest

from halyard_worker import LLM, SamplingParams
from halyard_worker.engine.types import InvalidParameter

from engine_specs import ARCH_SPECS, PROMPTS

N = 8
pytestmark = pytest.mark.slow

CASES = [  # (architecture, tensor-parallel size, quantization modes); each mode starts the ranks once
    ("llama-gqa", 2, (None, "int8")),  # int8 row scales of o_proj/down_proj over the whole row
    ("llama-gqa", 4, ("int4",)),  # 2 KV heads on 4 ranks: replicated; o_proj cut inside int4 groups
    ("mistral", 2, (None,)),  # 1 KV head: replicated on both ranks
    ("qwen2-bias-tied", 4, (None,)),  # q/k/v bias, tied (vocab-parallel) embeddings
    ("llama3-odd-heads-tied", 3, (None,)),  # 3 heads, llama3 RoPE: TP=3 divides them
]
WIDTHS = {"llama3-odd-heads-tied": dict(intermediate_size=96)}  # an MLP width 3 divides


def greedy():
    return SamplingParams(temperature=0, max_tokens=N, min_tokens=N)


def generate(path, **kwargs) -> list[tuple[int, ...]]:
    with LLM(str(path), dtype="float32", max_model_len=128, max_num_seqs=8, **kwargs) as llm:
        return [out.token_ids for out in llm.generate(PROMPTS[:4], greedy())]


@pytest.mark.parametrize("arch,size,modes", CASES, ids=[f"{a}-tp{s}" for a, s, _ in CASES])
def test_tensor_parallel_greedy_equals_one_rank(tiny_model_factory, arch, size, modes):
    path = tiny_model_factory(**ARCH_SPECS[arch], **WIDTHS.get(arch, {}))
    for mode in modes:
        expected = generate(path, quantization=mode)
        assert all(len(ids) == N for ids in expected)
        assert generate(path, quantization=mode, tensor_parallel_size=size) == expected, mode


def test_a_size_that_does_not_divide_the_heads_is_refused_before_any_rank_starts(tiny_model_factory):
    path = tiny_model_factory(**ARCH_SPECS["llama3-odd-heads-tied"])  # 3 heads
    with pytest.raises(InvalidParameter) as err:
        LLM(str(path), tensor_parallel_size=2)
    assert err.value.param == "tensor_parallel_size"
    assert "--tensor-parallel-size (spec.resources.gpus) is 2" in str(err.value)
    assert "use one of 1, 3" in str(err.value)
