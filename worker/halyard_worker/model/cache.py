"""The node-local model cache: one directory per (URI, revision), written once.

Layout under the cache root:
  <key>/                 a complete entry (the files of the model, as in the source)
  <key>/.halyard-manifest.json   {uri, revision, files: {relpath: {size, sha256}}}
  <key>.lock             flock held while an entry is checked or written
  <key>.partial/         a download in progress (renamed to <key>/ when complete)

A process that finds the entry locked waits for the lock and then sees the
finished entry, so two pods on one node download once. Entries are verified
against their manifest (sizes, and sha256 when `full`) before they are used
by `fetch`; an entry that fails is removed and fetched again.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from halyard_worker.model.source import ModelSource

log = logging.getLogger("halyard_worker.fetch")
MANIFEST = ".halyard-manifest.json"
CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """Where one source lives in the cache (paths only; nothing is created)."""

    root: Path
    key: str

    @property
    def path(self) -> Path:
        return self.root / self.key

    @property
    def partial(self) -> Path:
        return self.root / f"{self.key}.partial"

    @property
    def lock_file(self) -> Path:
        return self.root / f"{self.key}.lock"

    def manifest(self) -> dict | None:
        try:
            return json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def problems(self, full: bool) -> list[str]:
        """Why the entry cannot be used (empty = complete and intact)."""
        manifest = self.manifest()
        if manifest is None:
            return ["no manifest"]
        problems = []
        for rel, meta in manifest["files"].items():
            file = self.path / rel
            if not file.is_file() or file.stat().st_size != meta["size"]:
                problems.append(f"{rel}: missing or wrong size")
            elif full and sha256_file(file) != meta["sha256"]:
                problems.append(f"{rel}: sha256 differs from the manifest")
        return problems


@contextlib.contextmanager
def locked(entry: CacheEntry):
    """Hold the entry's file lock (blocking), logging when another process holds it."""
    entry.root.mkdir(parents=True, exist_ok=True)
    with open(entry.lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process fetching into %s", entry.path)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("lock acquired after %.1f s", time.monotonic() - started)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def begin(entry: CacheEntry) -> Path:
    """A fresh, empty `.partial` directory (the caller holds the lock)."""
    shutil.rmtree(entry.partial, ignore_errors=True)
    entry.partial.mkdir(parents=True)
    return entry.partial


def commit(entry: CacheEntry, source: ModelSource, files: dict[str, dict]) -> Path:
    """Write the manifest and move the finished download into place."""
    manifest = {"uri": source.uri, "revision": source.revision, "files": files,
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (entry.partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    discard(entry)
    os.rename(entry.partial, entry.path)
    return entry.path


def discard(entry: CacheEntry) -> None:
    shutil.rmtree(entry.path, ignore_errors=True)


class Progress:
    """Logs a download's progress at most every `every_s` seconds."""

    def __init__(self, what: str, total: int, every_s: float = 2.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.done, self.started = 0, time.monotonic()
        self.last = self.started

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            log.info("%s: %s", self.what, self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{pct:.0f}% ({self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB, "
                f"{self.done / 1e6 / elapsed:.1f} MB/s, {elapsed:.1f} s)")
