"""Idempotent writes of child objects.

A child is written only when it differs from the live object in a field we
manage. Two checks, both needed: the `halyard.dev/applied-hash` annotation
(hash of the desired object) changes when we stop setting a field, which a
subset check cannot see; the subset check catches drift from other writers
while ignoring fields the API server defaults. The write is server-side apply
(field manager halyard-operator, force), so the server removes fields we no
longer set and the objects stay co-ownable with other managers.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from halyard_operator.kube.client import KubeClient
from halyard_operator.names import HASH_ANNOTATION


def with_hash(desired: dict) -> dict:
    """A copy of `desired` carrying the hash of its own content."""
    digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()[:20]
    meta = dict(desired["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), HASH_ANNOTATION: digest}
    return {**desired, "metadata": meta}


def is_subset(want: Any, have: Any) -> bool:
    """Every field of `want` is present in `have` with the same value; dicts
    may carry extra keys (server defaults), lists must match item by item."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(want) == len(have)
                and all(is_subset(w, h) for w, h in zip(want, have)))
    return want == have


def needs_write(desired: dict, live: dict | None) -> bool:
    """`desired` must come from with_hash()."""
    if live is None:
        return True
    live_hash = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if live_hash != desired["metadata"]["annotations"][HASH_ANNOTATION]:
        return True
    return not is_subset(desired, live)


async def write(kube: KubeClient, desired: dict) -> dict | None:
    """Server-side apply; returns the live object the server answered with.
    An API server without apply-creates (the in-memory emulator used in tests
    answers 404 for a PATCH of a missing object) gets a create instead; a real
    API server never takes that branch."""
    status, live = await kube.apply(desired)
    if status != 404:
        return live
    status, live = await kube.create(desired)
    if status == 409:  # created concurrently: apply over it
        _, live = await kube.apply(desired)
    return live
