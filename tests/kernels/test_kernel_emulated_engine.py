"""The engine on CPU with the kernel op set (CUDA C run by the CPU emulator) reproduces
the greedy tokens of its torch reference ops on a tiny model."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parent / "emulator"))
import emulator  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the CPU emulator")]

PROMPTS = ["The quick brown fox", "Kubernetes schedules pods onto nodes", "Hello"]


def greedy(path, quantization=None, max_tokens=6, kernels="torch") -> list[list[int]]:
    from halyard_worker import LLM, SamplingParams

    llm = LLM(model=str(path), dtype="bfloat16", device="cpu", max_num_seqs=4, quantization=quantization,
              kernels=kernels)
    outs = llm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True))
    return [list(o.token_ids) for o in outs]


# int4 works too (kernel launched, same tokens) but takes minutes in the emulator; the
# quantized kernels are checked one by one in test_kernel_emulated.py.
@pytest.mark.parametrize("quantization,max_tokens", [(None, 6)])
def test_kernel_ops_reproduce_the_torch_reference_greedy_tokens(tiny_model_factory, monkeypatch, quantization,
                                                                 max_tokens):
    ops = pytest.importorskip("halyard_worker.model.ops")
    from halyard_worker.kernels import ops as kernel_selection

    path = tiny_model_factory(num_heads=4, num_kv_heads=1)  # GQA 4, head dim 16
    want = greedy(path, quantization, max_tokens, kernels="torch")
    emulator.install(monkeypatch)
    emulator.LAUNCHED.clear()
    # The emulator stands in for CuPy and a GPU, so `kernels="cupy"` goes through
    # the engine's real op selection at start-up.
    monkeypatch.setattr(kernel_selection, "cupy_missing_reason", lambda device: None)
    try:
        got = greedy(path, quantization, max_tokens, kernels="cupy")
    finally:
        ops.reset()
    assert got == want
    launched = {name.rsplit("_", 1)[0] for name in emulator.LAUNCHED}
    assert {"rms_norm", "rotary", "write_kv", "silu_mul", "paged_decode_bf16"} <= launched
    if quantization:
        assert any(name.startswith("w4a16_bf16") for name in launched)
    assert len({tuple(t) for t in want}) == len(PROMPTS)  # distinct continuations: a real comparison
