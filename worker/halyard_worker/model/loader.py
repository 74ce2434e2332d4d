"""Load a model checkpoint into `LlamaModel`.

Model locations (directories, .gguf files, hf://, s3://, pvc://) are parsed
in `source.py` and fetched or checked in `fetch.py`. Checkpoints: a Hugging
Face directory (single or sharded safetensors, float or AutoAWQ GEMM) or a
`.gguf` file; weights are read, quantized and placed one layer at a time
(`model/build.py`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from halyard_worker.model.config import ModelConfig, parse_config
from halyard_worker.model.llama import LlamaModel
from halyard_worker.options import INT4_DEFAULT_GROUP_SIZE

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_model_path(uri: str, revision: str | None = None, cache: Path | None = None) -> Path:
    """Turn a model location (see `model/source.py`) into a local path, or raise a clear error."""
    from halyard_worker.model.fetch import resolve
    from halyard_worker.model.source import parse_model_uri

    return resolve(parse_model_uri(uri, revision), cache)


def is_gguf(path: Path) -> bool:
    return Path(path).suffix == ".gguf"


def open_source(path: Path):
    """The checkpoint reader for `path`: GGUFSource or HFSource (see build.py)."""
    path = Path(path)
    if is_gguf(path):
        from halyard_worker.model.gguf_source import GGUFSource

        return GGUFSource(path)
    from halyard_worker.model.hf_source import HFSource

    with open(path / "config.json") as f:
        raw = json.load(f)
    return HFSource(path, parse_config(raw), raw)


def load_config(path: Path) -> ModelConfig:
    if is_gguf(path):
        return open_source(path).config
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


def load_model(path: Path, config: ModelConfig, dtype: torch.dtype, device: str,
               max_positions: int, quantization: str | None = None,
               calibration: list[list[int]] | None = None, plan=None, comm=None,
               group_size: int = INT4_DEFAULT_GROUP_SIZE) -> LlamaModel:
    """Build the model layer by layer from the checkpoint at `path` (quantizing
    while loading, int4 in groups of `group_size`); `config` must be the
    checkpoint's own (`load_config`).
    With a `ShardPlan` and its `TPComm`: this rank's slices only."""
    from halyard_worker.model.build import build_model

    source = open_source(path)
    if source.config != config:
        raise ValueError(f"model config given for {str(path)!r} differs from the checkpoint's")
    return build_model(source, dtype, device, max_positions, quantization, calibration, plan, comm,
                       group_size)
