"""Model source -> a local path the loader reads (a HF directory or a .gguf file).

`resolve(source, cache)` is what both `halyard-worker fetch` (the pod's init
container) and `serve` call: local sources are checked in place; s3:// is
downloaded once into the node-local cache (see `cache.py`); hf:// goes
through huggingface_hub with the cache's `hf/` directory as its hub cache.
Both remote kinds hold the entry's file lock while they check or write, so
replicas on one node download once, and `verify=True` (fetch) checks every
file's checksum, re-fetching an entry that fails.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from halyard_worker.model import cache as model_cache
from halyard_worker.model.cache import CacheEntry, log
from halyard_worker.model.source import ModelSource

GGUF_MAGIC = b"GGUF"
INDEX = "model.safetensors.index.json"


class ModelNotFound(FileNotFoundError):
    """The source resolved, but what is there is not a loadable model; names the flag."""


def default_cache() -> Path:
    return Path(os.environ.get("HALYARD_MODEL_CACHE") or Path.home() / ".cache" / "halyard" / "model-cache")


def resolve(source: ModelSource, cache: Path | None = None, verify: bool = False) -> Path:
    """The local model path for `source`, fetching remote sources into `cache`."""
    if source.scheme == "local":
        return check_local(Path(source.path).expanduser(), source.uri)
    root = Path(cache) if cache else default_cache()
    started = time.monotonic()
    path = _fetch_hf(source, root, verify) if source.scheme == "hf" else _fetch_s3(source, root, verify)
    log.info("model %s is at %s (%.1f s)", source.uri, path, time.monotonic() - started)
    return check_local(path, source.uri)


def _fetch_s3(source: ModelSource, root: Path, verify: bool) -> Path:
    from halyard_worker.model import s3

    entry = CacheEntry(root, source.cache_key)
    with model_cache.locked(entry):
        problems = entry.problems(full=verify)
        if not problems:
            log.info("cache hit: %s in %s%s", source.uri, entry.path, " (checksums verified)" if verify else "")
            return _entry_target(entry, source)
        if entry.path.exists():
            log.warning("cache entry %s unusable (%s): fetching again", entry.path, "; ".join(problems[:3]))
        dest = model_cache.begin(entry)
        progress_started = time.monotonic()
        files = s3.download(source, dest)
        model_cache.commit(entry, source, files)
        log.info("fetched %s: %d files, %.1f MB in %.1f s", source.uri, len(files),
                 sum(f["size"] for f in files.values()) / 1e6, time.monotonic() - progress_started)
    return _entry_target(entry, source)


def _entry_target(entry: CacheEntry, source: ModelSource) -> Path:
    return entry.path / source.path.rsplit("/", 1)[-1] if source.is_gguf else entry.path


def _fetch_hf(source: ModelSource, root: Path, verify: bool) -> Path:
    from halyard_worker.model import hub

    entry = CacheEntry(root, source.cache_key)
    with model_cache.locked(entry):
        path = hub.download(source, root / "hf")
        problems = hub.verify_snapshot(path) if verify else []
        if problems:
            raise hub.HubFetchError(f"{source.uri}: the hub cache at {path} is corrupt "
                                    f"({'; '.join(problems[:3])}); delete it and fetch again")
        if verify:
            log.info("checksums verified for %s", path)
    return path


def check_local(path: Path, uri: str) -> Path:
    """`path` if it is a loadable model (HF directory or GGUF file), else ModelNotFound."""
    if path.is_file():
        with open(path, "rb") as f:
            if path.suffix != ".gguf" or f.read(4) != GGUF_MAGIC:
                raise ModelNotFound(f"--model {uri!r}: {str(path)!r} is a file but not a GGUF model "
                                    "(a .gguf file starting with GGUF); give a model directory or a .gguf file")
        return path
    if not path.is_dir():
        raise ModelNotFound(f"--model {uri!r}: {str(path)!r} does not exist")
    ggufs = sorted(path.glob("*.gguf"))
    if not (path / "config.json").is_file() and len(ggufs) == 1:
        return check_local(ggufs[0], uri)  # a directory holding one GGUF file (e.g. an s3:// prefix)
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"--model {uri!r}: model directory {str(path)!r} has no config.json")
    index = path / INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        missing = [s for s in shards if not (path / s).is_file()]
        if missing or not shards:
            raise ModelNotFound(f"--model {uri!r}: {INDEX} in {str(path)!r} lists shards that are missing: "
                                f"{', '.join(missing[:5]) or '(none listed)'}")
    elif not list(path.glob("*.safetensors")):
        raise ModelNotFound(f"--model {uri!r}: model directory {str(path)!r} has no *.safetensors weights")
    return path
