"""Tensor parallelism over two GPUs (NCCL): greedy TP=2 equals TP=1 on the
same GPUs (float32, so the all-reduce's summation order is the only
difference). Skipped on machines with fewer than two GPUs."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                 reason="needs two CUDA GPUs")]

PROMPTS = ["The quick brown fox", "Kubernetes schedules pods", "Paged attention stores", "Hello world!"]


def greedy(path, **kwargs) -> list[tuple[int, ...]]:
    from halyard_worker import LLM, SamplingParams

    with LLM(str(path), dtype="float32", device="cuda", max_model_len=256, **kwargs) as llm:
        outs = llm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True))
    return [o.token_ids for o in outs]


@pytest.mark.parametrize("quantization", [None, "int8", "int4"])
def test_two_gpu_ranks_match_one(tiny_model_factory, quantization):
    path = tiny_model_factory(hidden_size=256, intermediate_size=512, num_heads=4, num_kv_heads=2)
    assert greedy(path, quantization=quantization, tensor_parallel_size=2) == greedy(path, quantization=quantization)
