"""Opt-in exact-match response cache (bounded entries and bytes, TTL).

Only deterministic requests are cached: temperature 0 (or a fixed integer
`seed`), one choice (`n`/`best_of` absent or 1). The key is the endpoint plus
the whole request body in canonical JSON (model, prompt or messages, every
sampling parameter, `stream` and `stream_options`), so a streaming request is
only answered from a stream stored for the same request: its chunks are
replayed byte for byte. Only complete 200 answers are stored.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedResponse:
    """A complete answer: content type and the body as the chunks it arrived in."""

    content_type: str
    chunks: tuple[bytes, ...]
    stored_at: float

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)


def cacheable(body: dict) -> bool:
    if body.get("n", 1) != 1 or body.get("best_of", 1) != 1:
        return False
    seed = body.get("seed")
    return body.get("temperature", 1.0) == 0 or (isinstance(seed, int) and not isinstance(seed, bool))


def cache_key(path: str, body: dict) -> str:
    text = json.dumps([path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """LRU with a TTL; `max_bytes` bounds the sum of stored bodies."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float, clock=time.monotonic):
        self.max_entries, self.max_bytes, self.ttl_s, self.clock = max_entries, max_bytes, ttl_s, clock
        self.entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self.bytes = 0

    def get(self, key: str) -> CachedResponse | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry.stored_at > self.ttl_s:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, content_type: str, chunks: list[bytes]) -> None:
        entry = CachedResponse(content_type, tuple(chunks), self.clock())
        if entry.size > self.max_bytes or self.max_entries <= 0:
            return
        if key in self.entries:
            self._drop(key)
        self.entries[key] = entry
        self.bytes += entry.size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: str) -> None:
        self.bytes -= self.entries.pop(key).size
