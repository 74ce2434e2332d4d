"""Results of pure functions of the watched node tuple, computed once per node change.

The watch-fed view hands every reconcile the same node tuple until a Node
change that matters arrives (`indexing.NodeWatch` bumps the version), so what
is derived from it alone (usable GPUs, label sets, nodes by name) is computed
once for that tuple instead of once per reconcile. A new tuple (a node
changed, or a caller that builds its own, as tests and the simulator do)
simply recomputes.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

R = TypeVar("R")


def per_object(fn: Callable[..., R]) -> Callable[..., R]:
    """Memo of `fn(first, *rest)` for the last `first` seen (by identity, kept alive
    here so its id is not reused); `rest` must be hashable. Results are shared:
    callers must not mutate them."""
    last: dict[str, Any] = {"first": None, "results": {}}

    @functools.wraps(fn)
    def memoized(first, *rest):
        if last["first"] is not first:
            last["first"], last["results"] = first, {}
        results = last["results"]
        if rest not in results:
            results[rest] = fn(first, *rest)
        return results[rest]

    return memoized
