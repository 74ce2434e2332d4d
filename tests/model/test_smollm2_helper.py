"""The real model's helper: the GGUF file from the wheel and its float32 reference."""
from __future__ import annotations

import json


def test_gguf_file_is_found_in_the_wheel(smollm2_gguf):
    assert smollm2_gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with open(smollm2_gguf, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert smollm2_gguf.stat().st_size > 50_000_000


def test_reference_directory_is_the_dequantized_float32_model(smollm2_hf_dir):
    config = json.loads((smollm2_hf_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_key_value_heads"]) == (30, 576, 3)
    assert config["tie_word_embeddings"] is True and "quantization_config" not in config
    assert (smollm2_hf_dir / "tokenizer.json").is_file()
    # float32: 135M parameters at 4 bytes each (not the ~90 MB quantized file)
    assert (smollm2_hf_dir / "model.safetensors").stat().st_size > 500_000_000
