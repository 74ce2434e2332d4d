"""In-cluster backends: watch the LLMDeployment's worker pods (not Endpoints:
a pod's drain mark or deletion must stop traffic at once, before any
endpoint controller reacts; and dev clusters with loopback pod IPs have none).

`backend_of(pod)` is pure. `watch_pods` lists, then watches from the list's
resourceVersion, and re-lists after any error or an expired watch (410).
"""
from __future__ import annotations

import asyncio
import json
import logging

import aiohttp

from halyard_operator.names import DEPLOYMENT_LABEL, DRAINING_ANNOTATION
from halyard_operator.kube.connection import Connection
from halyard_router.backends import Backend, Backends

log = logging.getLogger(__name__)


def _ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def backend_of(pod: dict, deployment: str, port: int) -> Backend | None:
    """The pod as a backend, or None: not this deployment's worker, not Ready,
    no IP yet, terminating, or marked for drain."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if (meta.get("labels") or {}).get(DEPLOYMENT_LABEL) != deployment:
        return None
    if meta.get("deletionTimestamp") or DRAINING_ANNOTATION in (meta.get("annotations") or {}):
        return None
    if status.get("phase") != "Running" or not status.get("podIP") or not _ready(pod):
        return None
    ip = status["podIP"]
    host = f"[{ip}]" if ":" in ip else ip
    return Backend(meta["name"], f"http://{host}:{port}")


class PodWatch:
    """Keeps `backends` equal to the deployment's usable worker pods."""

    def __init__(self, connection: Connection, namespace: str, deployment: str, port: int,
                 backends: Backends):
        self.connection, self.namespace, self.deployment = connection, namespace, deployment
        self.port, self.backends = port, backends
        self.pods: dict[str, dict] = {}  # name -> last seen pod

    def _publish(self) -> None:
        found = [backend_of(p, self.deployment, self.port) for p in self.pods.values()]
        self.backends.replace([b for b in found if b is not None])

    def _headers(self) -> dict:
        token = self.connection.bearer()
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def _path(self) -> str:
        return f"{self.connection.server.rstrip('/')}/api/v1/namespaces/{self.namespace}/pods"

    async def _list(self, session: aiohttp.ClientSession, ssl) -> str:
        params = {"labelSelector": f"{DEPLOYMENT_LABEL}={self.deployment}"}
        async with session.get(self._path, params=params, headers=self._headers(), ssl=ssl) as resp:
            resp.raise_for_status()
            listing = await resp.json()
        self.pods = {p["metadata"]["name"]: p for p in listing.get("items") or ()}
        self._publish()
        return listing["metadata"]["resourceVersion"]

    async def _watch(self, session: aiohttp.ClientSession, ssl, version: str) -> None:
        params = {"labelSelector": f"{DEPLOYMENT_LABEL}={self.deployment}", "watch": "1",
                  "resourceVersion": version, "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        async with session.get(self._path, params=params, headers=self._headers(), ssl=ssl,
                               timeout=aiohttp.ClientTimeout(total=None, sock_read=330)) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if line.strip():
                    self._event(json.loads(line))

    def _event(self, event: dict) -> None:
        kind, pod = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise aiohttp.ClientError(f"watch error: {pod.get('message', pod)}")
        if kind == "BOOKMARK":
            return
        name = pod["metadata"]["name"]
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = pod
        self._publish()

    async def run(self) -> None:
        ssl = self.connection.ssl_context()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                try:
                    version = await self._list(session, ssl)
                    await self._watch(session, ssl, version)
                except asyncio.CancelledError:
                    raise
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                    log.warning("Pod watch of %s/%s restarted: %s", self.namespace, self.deployment, exc)
                    await asyncio.sleep(1.0)
