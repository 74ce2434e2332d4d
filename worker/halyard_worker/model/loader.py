"""Load a Hugging Face model directory into `LlamaModel`.

Model locations (directories, .gguf files, hf://, s3://, pvc://) are parsed
in `source.py` and fetched or checked in `fetch.py`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from halyard_worker.model.config import ModelConfig, parse_config
from halyard_worker.model.llama import LlamaModel, rope_cache

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_model_path(uri: str, revision: str | None = None, cache: Path | None = None) -> Path:
    """Turn a model location (see `model/source.py`) into a local path, or raise a clear error."""
    from halyard_worker.model.fetch import resolve
    from halyard_worker.model.source import parse_model_uri

    return resolve(parse_model_uri(uri, revision), cache)


def load_config(path: Path) -> ModelConfig:
    with open(path / "config.json") as f:
        return parse_config(json.load(f))


def choose_dtype(requested: str, config: ModelConfig, device: str) -> torch.dtype:
    """`auto` takes the checkpoint's dtype, but float32 on CPU for half checkpoints."""
    if requested != "auto":
        return DTYPES[requested]
    dtype = DTYPES.get(config.torch_dtype, torch.float32)
    if device == "cpu" and dtype is not torch.float32:
        return torch.float32
    return dtype


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        state.update(load_file(str(file)))
    return state


def to_halyard_names(hf: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Map HF names to LlamaModel's: drop the `model.` prefix, merge q/k/v
    into `qkv_proj` and gate/up into `gate_up_proj` (concatenated on dim 0)."""
    out = {}
    for name, tensor in hf.items():
        out[name[len("model."):] if name.startswith("model.") else name] = tensor
    for i in range(config.num_layers):
        attn, mlp = f"layers.{i}.self_attn.", f"layers.{i}.mlp."
        for kind in ("weight", "bias"):
            parts = [out.pop(f"{attn}{p}_proj.{kind}", None) for p in "qkv"]
            if all(p is not None for p in parts):
                out[f"{attn}qkv_proj.{kind}"] = torch.cat(parts, dim=0)
            parts = [out.pop(f"{mlp}{p}_proj.{kind}", None) for p in ("gate", "up")]
            if all(p is not None for p in parts):
                out[f"{mlp}gate_up_proj.{kind}"] = torch.cat(parts, dim=0)
    if config.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def load_model(path: Path, config: ModelConfig, dtype: torch.dtype, device: str,
               max_positions: int, quantization: str | None = None,
               calibration: list[list[int]] | None = None) -> LlamaModel:
    """Build the model, load the weights, optionally quantize, move to device."""
    with torch.device("meta"):
        model = LlamaModel(config, max_positions)
    state = to_halyard_names(read_state_dict(path), config)
    expected = {k for k in model.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    missing = sorted(expected - state.keys())
    if missing:
        raise ValueError(f"checkpoint in {str(path)!r} lacks weights: {', '.join(missing[:5])}")
    model.load_state_dict({k: v.to(dtype) for k, v in state.items() if k in expected},
                          strict=False, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    # buffers were built on the meta device: compute them for real
    model.rope_cos, model.rope_sin = rope_cache(config.rope, config.head_dim, max_positions)
    model = model.to(device).eval().requires_grad_(False)
    if quantization:
        from halyard_worker.model.quant import quantize_model

        quantize_model(model, quantization, calibration=calibration)
    return model
