"""hf://org/repo[@rev][/file.gguf] through huggingface_hub.

huggingface_hub keeps its own cache (`cache_dir`, else HF_HOME / HF_HUB_CACHE),
keyed by repo and revision, and honours HF_ENDPOINT, HF_TOKEN and
HF_HUB_OFFLINE (an offline pod serves from a pre-populated cache). Its blobs
are named by content hash -- sha256 for LFS files (the weights), the git blob
sha1 for small files -- which `verify_snapshot` checks.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from halyard_worker.model.cache import CHUNK, log, sha256_file
from halyard_worker.model.source import ModelSource

# what a model directory needs; no other repo files (READMEs, pytorch_model.bin, onnx, ...)
PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
_SHA256, _SHA1 = re.compile(r"^[0-9a-f]{64}$"), re.compile(r"^[0-9a-f]{40}$")


class HubFetchError(RuntimeError):
    """The repository or file could not be had; the message names the URI."""


def download(source: ModelSource, cache_dir: Path | None) -> Path:
    """The local snapshot directory (or the .gguf file) of `source`."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError as err:  # pragma: no cover - a dependency of the worker extra
        raise HubFetchError(f"{source.uri} needs the huggingface_hub package") from err
    where = str(cache_dir) if cache_dir else None
    log.info("fetching %s (revision %s) with huggingface_hub", source.uri, source.revision or "main")
    try:
        if source.filename:
            return Path(hf_hub_download(source.path, source.filename, revision=source.revision,
                                        cache_dir=where))
        return Path(snapshot_download(source.path, revision=source.revision, cache_dir=where,
                                      allow_patterns=PATTERNS))
    except Exception as err:  # network, auth, missing repo or revision, offline without a cache
        raise HubFetchError(f"could not fetch {source.uri} (revision {source.revision or 'main'}): "
                            f"{type(err).__name__}: {err}") from err


def verify_snapshot(path: Path) -> list[str]:
    """Files of a hub snapshot (or one file) whose content does not match its blob name."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    problems = []
    for file in files:
        blob = file.resolve().name
        if _SHA256.match(blob) and sha256_file(file) != blob:
            problems.append(f"{file.name}: sha256 differs from the hub's")
        elif _SHA1.match(blob) and _git_sha1(file) != blob:
            problems.append(f"{file.name}: git blob sha1 differs from the hub's")
    return problems


def _git_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
