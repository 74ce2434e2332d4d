"""GGUF tensors decode to the file's own values: Q4_0/Q4_1 into Halyard int4
(group 32), Q8_0 exactly, F16/BF16 as is, other types dequantized with a log
line; config from the metadata; llama q/k rows un-permuted."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize, quantize  # noqa: E402

from halyard_worker.model.gguf_source import GGUFSource  # noqa: E402
from halyard_worker.model.weights import QuantizedWeight  # noqa: E402

Q = gguf.GGMLQuantizationType
ROWS, COLS = 12, 64  # 2 blocks of 32 per row


def _values(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.2, (ROWS, COLS)).astype(np.float32)
    w[3, :32] = 0.25  # a constant block: Q4_1 stores it with d = 0
    return w


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "mini.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in {"block_count": 1, "context_length": 128, "embedding_length": COLS,
                       "feed_forward_length": 96, "attention.head_count": 4, "attention.head_count_kv": 2,
                       "rope.freq_base": 5000.0, "attention.layer_norm_rms_epsilon": 1e-5}.items():
        kind = float if isinstance(value, float) else int
        getattr(writer, "add_float32" if kind is float else "add_uint32")(f"llama.{key}", value)
    writer.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w = _values()
    for name, qtype in {"q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q8_0": Q.Q8_0, "q5_0": Q.Q5_0}.items():
        writer.add_tensor(name, quantize(w, qtype), raw_shape=quantize(w, qtype).shape, raw_dtype=qtype)
    writer.add_tensor("f16", w.astype(np.float16))
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)  # truncation is a valid bf16 value
    writer.add_tensor("bf16", bf16, raw_shape=bf16.shape, raw_dtype=Q.BF16)
    writer.add_tensor("token_embd.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _file_values(name, qtype):
    return dequantize(quantize(_values(), qtype), qtype)


@pytest.mark.parametrize("name,qtype", [("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1)])
def test_q4_blocks_become_int4_with_the_files_values(gguf_file, name, qtype):
    weight = GGUFSource(gguf_file).read(name)
    assert isinstance(weight, QuantizedWeight) and weight.mode == "int4" and weight.group_size == 32
    assert weight.qweight.shape == (ROWS, COLS // 2) and weight.scales.shape == (ROWS, COLS // 32)
    np.testing.assert_allclose(weight.dequantize().numpy(), _file_values(name, qtype), atol=1e-6)


def test_q8_0_is_exact_and_float_types_are_kept(gguf_file):
    source = GGUFSource(gguf_file)
    np.testing.assert_array_equal(source.read("q8_0").numpy(), _file_values("q8_0", Q.Q8_0))
    f16 = source.read("f16")
    assert f16.dtype == torch.float16 and torch.equal(f16, torch.from_numpy(_values().astype(np.float16)))
    bf16 = source.read("bf16")
    assert bf16.dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.float().numpy(), _values(), rtol=1e-2, atol=1e-6)


def test_other_types_are_dequantized_with_a_log_line(gguf_file, caplog):
    with caplog.at_level(logging.INFO, logger="halyard_worker.model.gguf_source"):
        weight = GGUFSource(gguf_file).read("q5_0")
    assert weight.dtype == torch.float32
    np.testing.assert_array_equal(weight.numpy(), _file_values("q5_0", Q.Q5_0))
    assert "Q5_0" in caplog.text and "dequantizing" in caplog.text


def test_config_comes_from_the_metadata(gguf_file):
    c = GGUFSource(gguf_file).config
    assert (c.architecture, c.num_layers, c.hidden_size, c.intermediate_size) == ("LlamaForCausalLM", 1, COLS, 96)
    assert (c.num_heads, c.num_kv_heads, c.head_dim, c.rope.theta) == (4, 2, 16, 5000.0)
    assert c.tie_word_embeddings and c.eos_token_ids == (2,) and c.vocab_size == ROWS


def test_llama_qk_rows_are_unpermuted(gguf_file):
    """llama.cpp stores each head's rows as (pair, 2); reading with `heads`
    restores Hugging Face's (2, pair) order, for float and int4 alike."""
    source = GGUFSource(gguf_file)
    plain, unpermuted = source.read("q4_1"), source.read("q4_1", heads=2)
    half = ROWS // 2 // 2  # rows per head / 2
    order = [h * ROWS // 2 + 2 * i + j for h in range(2) for j in range(2) for i in range(half)]
    assert torch.equal(unpermuted.dequantize(), plain.dequantize()[order])
    assert torch.equal(source.read("f16", heads=2), source.read("f16")[order])
