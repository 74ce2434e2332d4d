"""Load a model checkpoint into `LlamaModel`.

Accepted model locations: a Hugging Face directory (single or sharded
safetensors, float or AutoAWQ GEMM), a `.gguf` file, `file:///abs/path` of
either, or `hf://org/repo[@revision]` (resolved with
`huggingface_hub.snapshot_download` when that package is installed and the
hub is reachable). Weights are read, quantized and placed one layer at a
time (`model/build.py`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from halyard_worker.model.config import ModelConfig, parse_config
from halyard_worker.model.llama import LlamaModel

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_model_path(uri: str) -> Path:
    """Turn a model location into a local directory, or raise a clear error."""
    if uri.startswith("hf://"):
        return _download_hf(uri[len("hf://"):])
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file {str(path)!r} does not exist (model={uri!r})")
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist (model={uri!r})")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model directory {str(path)!r} has no config.json")
    if not list(path.glob("*.safetensors")):
        raise FileNotFoundError(f"model directory {str(path)!r} has no *.safetensors weights")
    return path


def _download_hf(repo: str) -> Path:
    repo, _, revision = repo.partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise RuntimeError(f"model hf://{repo} needs the huggingface_hub package; install it "
                           "or pass a local directory") from err
    try:
        path = snapshot_download(repo, revision=revision or None,
                                 allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"])
    except Exception as err:  # network, auth, missing repo: all surface the same way
        raise RuntimeError(f"could not download model hf://{repo}: {type(err).__name__}: {err}") from err
    return resolve_model_path(path)


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
               calibration: list[list[int]] | None = None) -> LlamaModel:
    """Build the model layer by layer from the checkpoint at `path` (quantizing
    while loading); `config` must be the checkpoint's own (`load_config`)."""
    from halyard_worker.model.build import build_model

    source = open_source(path)
    if source.config != config:
        raise ValueError(f"model config given for {str(path)!r} differs from the checkpoint's")
    return build_model(source, dtype, device, max_positions, quantization, calibration)
