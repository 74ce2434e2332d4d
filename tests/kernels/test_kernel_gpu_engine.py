"""The whole engine on a GPU with the CuPy kernels reproduces the CPU reference's
greedy output on a tiny model (GPU only)."""
from __future__ import annotations

import pytest

from kernel_helpers import requires_gpu

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, requires_gpu]

PROMPTS = ["The quick brown fox", "Kubernetes schedules pods", "Paged attention stores", "Hello world!"]


def greedy(model_path, device: str, **kwargs) -> list[list[int]]:
    from halyard_worker import LLM, SamplingParams

    llm = LLM(model=str(model_path), dtype="float16", device=device, **kwargs)
    outs = llm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True))
    return [list(o.token_ids) for o in outs]


@pytest.mark.parametrize("quantization", [None, "int8", "int4"])
def test_cupy_engine_matches_the_cpu_reference(tiny_model_factory, quantization):
    if quantization:
        pytest.importorskip("halyard_worker.model.quant")
    path = tiny_model_factory(hidden_size=256, intermediate_size=512, num_heads=4, num_kv_heads=1)
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False  # closest to the CPU sums
    want = greedy(path, "cpu", quantization=quantization)
    from halyard_worker.kernels import select_ops
    from halyard_worker.model import ops

    select_ops("cupy", "cuda").install(ops)
    try:
        got = greedy(path, "cuda", quantization=quantization)
    finally:
        ops.reset()
    assert got == want
