"""Tensor parallelism on the real SmolLM2-135M-Instruct (CPU, gloo).

SmolLM2 has 9 attention heads and 3 KV heads: 2 and 4 ranks cannot split it
and are refused; 3 ranks (3 query heads and 1 KV head each) run, and their
greedy output equals one rank's on the GGUF file's own Q4_1 (int4) values,
each rank decoding only its blocks (safetensors slices and int8 quantized
while loading are covered on the tiny architectures, which start faster).
"""
from __future__ import annotations

import pytest

from halyard_worker import LLM, SamplingParams
from halyard_worker.engine.types import InvalidParameter

pytestmark = pytest.mark.slow
N = 16
PROMPTS = ["<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
           "Kubernetes is"]


def greedy(path, **kwargs) -> list[tuple[int, ...]]:
    with LLM(str(path), dtype="float32", max_model_len=256, max_num_seqs=4, **kwargs) as llm:
        return [o.token_ids for o in llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=N,
                                                                          min_tokens=N))]


def test_three_ranks_match_one_rank(smollm2_gguf):
    expected = greedy(smollm2_gguf, quantization="int4")
    assert greedy(smollm2_gguf, quantization="int4", tensor_parallel_size=3) == expected


@pytest.mark.parametrize("size", [2, 4])
def test_sizes_that_do_not_divide_nine_heads_are_refused(smollm2_gguf, size):
    with pytest.raises(InvalidParameter) as err:
        LLM(str(smollm2_gguf), tensor_parallel_size=size)
    assert "9 attention heads" in str(err.value) and "use one of 1, 3" in str(err.value)
