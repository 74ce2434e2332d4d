"""Kubernetes Events about an LLMDeployment, where `kubectl describe` and
`kubectl events --for llmdeployment/NAME` look for them.

`build_event()` (pure) makes a core/v1 Event whose `involvedObject` names the
LLMDeployment in full (apiVersion, kind, name, namespace, uid), with
`reportingComponent: halyard-operator` and a reason from `names.EVENT_REASONS`.
`EventRecorder` is the reconcile's event sink: it posts in the background
(a reconcile never waits on an Event) and, like client-go's correlator,
bumps `count`/`lastTimestamp` of the Event it already wrote for the same
object, type, reason and message instead of writing a new one.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from halyard_operator.api import API_GROUP, API_VERSION, KIND
from halyard_operator.kube.client import KubeClient, KubeError
from halyard_operator.names import EVENT_COMPONENT, EVENT_REASONS, NORMAL, WARNING

log = logging.getLogger(__name__)

COMPONENT = EVENT_COMPONENT
MAX_MESSAGE = 1024  # the API server caches and truncates longer messages anyway


@dataclass(frozen=True)
class ObjectRef:
    """The LLMDeployment an Event is about (all five fields are always set)."""

    name: str
    namespace: str
    uid: str
    api_version: str = f"{API_GROUP}/{API_VERSION}"
    kind: str = KIND

    @classmethod
    def of(cls, body: dict) -> "ObjectRef":
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))

    def as_dict(self) -> dict:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "namespace": self.namespace, "uid": self.uid}


def build_event(ref: ObjectRef, type_: str, reason: str, message: str, now: datetime.datetime,
                instance: str) -> dict:
    """A core/v1 Event. Raises ValueError for a type or reason outside the fixed sets."""
    if type_ not in (NORMAL, WARNING):
        raise ValueError(f"event type {type_!r}: use Normal or Warning")
    if reason not in EVENT_REASONS:
        raise ValueError(f"event reason {reason!r} is not in EVENT_REASONS")
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{ref.name}.{int(now.timestamp() * 1e9):x}", "namespace": ref.namespace},
        "involvedObject": ref.as_dict(),
        "type": type_, "reason": reason, "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT, "reportingInstance": instance,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def default_instance() -> str:
    """This replica's name: the pod name when running in a pod, else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


class EventRecorder:
    """Callable event sink `(body, type, reason, message)`; `await aclose()` flushes."""

    def __init__(self, kube: KubeClient, instance: str | None = None,
                 clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
                 remembered: int = 4096):
        """`remembered`: Events kept to count repeats on (least recently written dropped first:
        a repeat of a forgotten one is a new Event, as after the API server's event TTL)."""
        self.kube, self.instance, self.clock = kube, instance or default_instance(), clock
        # (uid, type, reason, message) -> (Event name, count)
        self._written: OrderedDict[tuple, tuple[str, int]] = OrderedDict()
        self._remembered = remembered
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, body: dict, type_: str, reason: str, message: str) -> None:
        event = build_event(ObjectRef.of(body), type_, reason, message, self.clock(), self.instance)
        task = asyncio.get_running_loop().create_task(self._post(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, event: dict) -> None:
        ref = event["involvedObject"]
        key = (ref["uid"], event["type"], event["reason"], event["message"])
        try:
            if key in self._written and await self._bump(key, event):
                return
            await self.kube.create(event)
            self._remember(key, (event["metadata"]["name"], 1))
        except (KubeError, OSError, asyncio.TimeoutError) as exc:
            log.warning("could not post %s event %s for %s/%s: %s", event["type"], event["reason"],
                        ref["namespace"], ref["name"], exc)

    async def _bump(self, key: tuple, event: dict) -> bool:
        """Count a repeat on the Event already written; False when that Event is gone."""
        name, count = self._written[key]
        patch = {"count": count + 1, "lastTimestamp": event["lastTimestamp"]}
        if not await self.kube.patch("Event", name, event["metadata"]["namespace"], patch):
            del self._written[key]
            return False
        self._remember(key, (name, count + 1))
        return True

    def _remember(self, key: tuple, value: tuple[str, int]) -> None:
        self._written[key] = value
        self._written.move_to_end(key)
        while len(self._written) > self._remembered:
            self._written.popitem(last=False)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
