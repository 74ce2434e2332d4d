"""AutoAWQ GEMM checkpoints load straight into the int4 path with the
checkpoint's own values, and generate what the float model they represent does."""
from __future__ import annotations

import json

import pytest
import torch

from halyard.testing.awq import build_awq_checkpoint, dequantized_state
from halyard_worker import LLM, SamplingParams
from halyard_worker.model.quant import Int4Linear

PROMPTS = ["The quick brown fox", "Paged attention stores keys and values in"]
N = 12


@pytest.fixture(scope="module")
def awq_pair(tiny_model, tmp_path_factory):
    """(AWQ checkpoint, float directory holding exactly the weights it represents)."""
    from safetensors.torch import save_file

    awq = build_awq_checkpoint(tiny_model, tmp_path_factory.mktemp("awq") / "model", group_size=32)
    ref = tmp_path_factory.mktemp("awq-ref") / "model"
    import shutil

    shutil.copytree(tiny_model, ref)
    save_file({k: v.contiguous() for k, v in dequantized_state(tiny_model, 32).items()},
              str(ref / "model.safetensors"))
    return awq, ref


def test_awq_weights_are_served_as_int4_unchanged(awq_pair):
    awq, ref = awq_pair
    assert json.loads((awq / "config.json").read_text())["quantization_config"]["quant_method"] == "awq"
    llm = LLM(str(awq), dtype="float32", quantization="int4")
    model = llm.engine.runner.model
    qkv = model.layers[0].self_attn.qkv_proj
    assert isinstance(qkv, Int4Linear) and qkv.group_size == 32
    from safetensors.torch import load_file

    expected = load_file(str(ref / "model.safetensors"))
    want = torch.cat([expected[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qkv"])
    from halyard_worker.model.torch_ops import dequant_int4

    got = dequant_int4(qkv.qweight, qkv.scales, qkv.zeros, qkv.group_size, torch.float32)
    assert torch.allclose(got, want, atol=1e-6)


def test_awq_greedy_matches_transformers_on_the_represented_weights(awq_pair, hf_greedy_any):
    awq, ref = awq_pair
    llm = LLM(str(awq), dtype="float32", quantization="int4")
    for prompt in PROMPTS:
        ids = llm.tokenizer.encode(prompt)
        [out] = llm.generate(ids, SamplingParams(temperature=0, max_tokens=N, min_tokens=N))
        assert list(out.token_ids) == hf_greedy_any(ref, ids, N), prompt


def test_unsupported_awq_variants_are_refused_by_name(awq_pair, tmp_path):
    import shutil

    awq, _ = awq_pair
    bad = tmp_path / "gemv"
    shutil.copytree(awq, bad)
    config = json.loads((bad / "config.json").read_text())
    config["quantization_config"]["version"] = "gemv"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="quantization_config.*gemv"):
        LLM(str(bad), dtype="float32", quantization="int4")
