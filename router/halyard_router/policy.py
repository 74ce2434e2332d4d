"""Which backend serves a request (pure): `prefix`, `least-load`, `round-robin`.

Each policy returns every candidate in preference order, so a retry after a
connection failure or a draining answer takes the next one.

- `prefix` (default): the backend that last got the longest shared prefix of
  the request (the router's table of block chains), if its load allows;
  else consistent hashing with bounded load (Mirrokni et al.) over the
  request's first-block key. Backends own points on a hash ring; a key walks the
  ring from its hash and takes the first backend whose load, with this request,
  stays within `load_factor` x the mean (and at least `load_floor`: at low
  load the bound alone would scatter a prefix's requests). A hot prefix therefore spills to the
  next backend on the ring (always the same one, so its cache warms too)
  instead of overloading its home. Requests without a key go by least load.
- `least-load`: lowest score first (load, then KV cache usage).
- `round-robin`: rotation by a counter, ignoring load.

Load of a backend = max(the router's own in-flight requests to it, the running +
waiting requests its last `vllm:` scrape reported): the first is exact and
instant for this router, the second also sees other router replicas.
"""
from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

POLICIES = ("prefix", "least-load", "round-robin")
RING_POINTS = 64  # virtual points per backend: keeps the key share per backend within a few %


@dataclass(frozen=True)
class BackendLoad:
    """One ready backend as the policy sees it. `running`/`waiting`/`kv_usage`
    come from the last scrape (None before the first); `in_flight` is this
    router's own count now."""

    name: str
    in_flight: int = 0
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None

    @property
    def load(self) -> float:
        scraped = (self.running or 0.0) + (self.waiting or 0.0)
        return max(float(self.in_flight), scraped)

    @property
    def score(self) -> tuple[float, float]:
        return (self.load, self.kv_usage or 0.0)


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@lru_cache(maxsize=64)
def _ring(names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    points = sorted((_point(f"{name}#{i}"), name) for name in names for i in range(RING_POINTS))
    return tuple(p for p, _ in points), tuple(n for _, n in points)


def ring_order(key: int, names: tuple[str, ...]) -> list[str]:
    """Distinct backends in ring order starting at the key's position."""
    hashes, owners = _ring(tuple(sorted(names)))
    start, order, seen = bisect.bisect_left(hashes, key), [], set()
    for i in range(len(owners)):
        owner = owners[(start + i) % len(owners)]
        if owner not in seen:
            seen.add(owner)
            order.append(owner)
            if len(order) == len(names):
                break
    return order


def bounded_capacity(loads: list[BackendLoad], load_factor: float, load_floor: int = 0) -> float:
    """Most load one backend may carry, counting the new request."""
    total = sum(b.load for b in loads) + 1
    return max(math.ceil(load_factor * total / len(loads)), load_floor)


def by_prefix(key: int | None, loads: list[BackendLoad], load_factor: float = 1.25,
              load_floor: int = 4, preferred: str | None = None) -> list[str]:
    if key is None:
        return by_load(loads)
    by_name = {b.name: b for b in loads}
    order = ring_order(key, tuple(by_name))
    if preferred in by_name:
        order = [preferred] + [n for n in order if n != preferred]
    cap = bounded_capacity(loads, load_factor, load_floor)
    fits = [n for n in order if by_name[n].load + 1 <= cap]
    return fits + [n for n in order if n not in fits]


def by_load(loads: list[BackendLoad]) -> list[str]:
    return [b.name for b in sorted(loads, key=lambda b: (b.score, b.name))]


def by_rotation(counter: int, loads: list[BackendLoad]) -> list[str]:
    names = sorted(b.name for b in loads)
    start = counter % len(names)
    return names[start:] + names[:start]


def choose(policy: str, loads: list[BackendLoad], key: int | None, counter: int,
           load_factor: float = 1.25, load_floor: int = 4, preferred: str | None = None) -> list[str]:
    """Candidates in preference order (empty when there is no backend)."""
    if not loads:
        return []
    if policy == "prefix":
        return by_prefix(key, loads, load_factor, load_floor, preferred)
    if policy == "least-load":
        return by_load(loads)
    if policy == "round-robin":
        return by_rotation(counter, loads)
    raise ValueError(f"unknown routing policy {policy!r}; use one of {', '.join(POLICIES)}")
