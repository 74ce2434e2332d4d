"""The operator's memory of its own writes, laid over the watch-fed indexes.

A watch delivers the operator's own write a moment after the API server
answered it. A reconcile woken in between (by another event) would see the
object as it was before and write again: a duplicate write and a duplicate
Event. `Written` keeps, per deployment, what the last writes returned:
children (the server's answer, or None after a delete), the status and the
scaling-state annotation. The operator is the only writer of the status and
of that annotation, so its memory of them is never older than a watched
body, and it is dropped once a watched body shows it; for children the memory holds until the index shows a newer object
(resourceVersions compare as numbers on a real API server; without them,
any object that differs from the one indexed at the write is newer), or `ttl_s`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from halyard_operator.names import STATE_ANNOTATION

Key = str  # "namespace/name"
ChildKey = tuple[str, str]  # (kind, name)


def _version(obj: dict | None) -> int | None:
    value = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _trimmed(obj: dict | None) -> dict | None:
    if obj is None or "managedFields" not in (obj.get("metadata") or {}):
        return obj
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}


@dataclass
class Written:
    ttl_s: float = 30.0
    clock: callable = time.monotonic
    children: dict = field(default_factory=dict)  # key -> {(kind, name): (object | None, written at)}
    status: dict = field(default_factory=dict)  # key -> status fields last patched
    state: dict = field(default_factory=dict)  # key -> scaling-state annotation last patched
    swept_at: float = 0.0

    def wrote_children(self, key: Key, objects: dict[ChildKey, dict | None], indexed: dict[ChildKey, dict]) -> None:
        """`objects`: the server's answers, None for a child deleted; `indexed`: the index before the writes.
        Kept without managedFields; entries of every deployment older than `ttl_s` are dropped here
        too, so a deployment never reconciled again does not keep its answers."""
        now = self.clock()
        self._sweep(now)
        mine = self.children.setdefault(key, {})
        mine.update({child: (_trimmed(obj), now, indexed.get(child)) for child, obj in objects.items()})

    def _sweep(self, now: float) -> None:
        if now - self.swept_at < self.ttl_s:
            return
        self.swept_at = now
        for key in list(self.children):
            mine = self.children[key]
            for child in [c for c, (_, at, _) in mine.items() if now - at > self.ttl_s]:
                del mine[child]
            if not mine:
                del self.children[key]

    def children_over(self, key: Key, indexed: dict[ChildKey, dict]) -> dict[ChildKey, dict]:
        """The indexed children, with own writes the watch has not delivered yet."""
        mine = self.children.get(key)
        if not mine:
            return indexed
        now, out = self.clock(), dict(indexed)
        for child, (obj, at, before) in list(mine.items()):
            seen = indexed.get(child)
            ours, theirs = _version(obj), _version(seen)
            caught_up = theirs >= ours if ours is not None and theirs is not None else seen != before
            if caught_up or now - at > self.ttl_s:
                del mine[child]  # the watch delivered the write (or something newer)
                continue
            if obj is None:
                out.pop(child, None)
            else:
                out[child] = obj
        return out

    def wrote_status(self, key: Key, status: dict) -> None:
        self.status[key] = status

    def wrote_state(self, key: Key, state: str) -> None:
        self.state[key] = state

    def body_over(self, key: Key, body: dict) -> dict:
        """`body` with the status and scaling state this operator last wrote. Once a
        watched body shows them, they are forgotten: every later body is at least as new."""
        status, state = self._unseen_status(key, body), self._unseen_state(key, body)
        if status is None and state is None:
            return body
        meta = dict(body.get("metadata") or {})
        if state is not None:
            meta["annotations"] = {**(meta.get("annotations") or {}), STATE_ANNOTATION: state}
        return {**body, "metadata": meta, "status": {**(body.get("status") or {}), **(status or {})}}

    def _unseen_status(self, key: Key, body: dict) -> dict | None:
        status = self.status.get(key)
        seen = body.get("status") or {}
        if status is not None and all(seen.get(k) == v for k, v in status.items()):
            del self.status[key]
            return None
        return status

    def _unseen_state(self, key: Key, body: dict) -> str | None:
        state = self.state.get(key)
        if state is not None and ((body.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION) == state:
            del self.state[key]
            return None
        return state

    def forget(self, key: Key) -> None:
        for memo in (self.children, self.status, self.state):
            memo.pop(key, None)
