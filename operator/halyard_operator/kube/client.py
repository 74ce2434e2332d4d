"""A minimal async Kubernetes REST client (aiohttp) with the semantics the
operator relies on: GET returns None on 404, DELETE tolerates 404, CREATE
tolerates 409, and writes use server-side apply with one field manager."""
from __future__ import annotations

import json
from typing import Any

import aiohttp

from halyard_operator.kube.connection import Connection
from halyard_operator.kube.paths import collection_path, object_path
from halyard_operator.names import FIELD_MANAGER

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


class KubeError(RuntimeError):
    """An unexpected API answer; `status` is the HTTP code."""

    def __init__(self, status: int, method: str, path: str, body: str):
        self.status = status
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")


class KubeClient:
    """Use as `async with KubeClient(connection) as kube:`."""

    def __init__(self, connection: Connection, timeout_s: float = 30.0):
        self.connection = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ssl = connection.ssl_context()  # built once: reading the CA per request is waste
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "KubeClient":
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, *, body: Any = None, params: dict | None = None,
                      content_type: str = "application/json", accept: str = "application/json",
                      ok: tuple[int, ...] = ()) -> tuple[int, Any]:
        """One API call -> (status, parsed JSON). Raises KubeError unless 2xx or in `ok`."""
        headers = {"Accept": accept}
        token = self.connection.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        assert self._session is not None, "use KubeClient as an async context manager"
        url = self.connection.server.rstrip("/") + path
        async with self._session.request(method, url, data=data, params=params, headers=headers,
                                         ssl=self._ssl) as resp:
            text = await resp.text()
            if resp.status < 300 or resp.status in ok:
                return resp.status, (json.loads(text) if text else None)
            raise KubeError(resp.status, method, path, text)

    async def get(self, kind: str, name: str, namespace: str | None = None,
                  metadata_only: bool = False) -> dict | None:
        accept = METADATA_ONLY if metadata_only else "application/json"
        status, obj = await self.request("GET", object_path(kind, name, namespace), accept=accept, ok=(404,))
        return None if status == 404 else obj

    async def list(self, kind: str, namespace: str | None = None, *, labels: str | None = None,
                   fields: str | None = None) -> list[dict]:
        """Every object of `kind` (in `namespace`, or all), optionally filtered by
        label and field selectors (e.g. labels="halyard.dev/deployment=chat")."""
        params = {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v}
        _, obj = await self.request("GET", collection_path(kind, namespace), params=params or None)
        return list((obj or {}).get("items") or [])

    async def patch(self, kind: str, name: str, namespace: str | None, body: dict) -> bool:
        """JSON merge patch (e.g. annotations); False when the object is gone."""
        status, _ = await self.request("PATCH", object_path(kind, name, namespace), body=body,
                                       content_type=MERGE, ok=(404,))
        return status != 404

    async def apply(self, obj: dict) -> tuple[int, dict | None]:
        """Server-side apply (force, field manager halyard-operator).
        Returns (status, live object); 404 means the server did not create it."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["name"], meta.get("namespace"))
        return await self.request("PATCH", path, body=obj, content_type=APPLY, ok=(404,),
                                  params={"fieldManager": FIELD_MANAGER, "force": "true"})

    async def create(self, obj: dict) -> tuple[int, dict | None]:
        """POST; 409 (already exists) is returned, not raised."""
        meta = obj["metadata"]
        return await self.request("POST", collection_path(obj["kind"], meta.get("namespace")), body=obj,
                                  params={"fieldManager": FIELD_MANAGER}, ok=(409,))

    async def replace(self, obj: dict, ok: tuple[int, ...] = ()) -> tuple[int, dict | None]:
        """PUT the whole object; with metadata.resourceVersion set, a stale write is 409."""
        meta = obj["metadata"]
        return await self.request("PUT", object_path(obj["kind"], meta["name"], meta.get("namespace")), body=obj,
                                  params={"fieldManager": FIELD_MANAGER}, ok=ok)

    async def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """DELETE (background propagation); False when it was already gone."""
        status, _ = await self.request("DELETE", object_path(kind, name, namespace), ok=(404,),
                                       body={"propagationPolicy": "Background"})
        return status != 404

    async def patch_status(self, kind: str, name: str, namespace: str, status: dict) -> None:
        """JSON merge patch of the status subresource."""
        await self.request("PATCH", object_path(kind, name, namespace) + "/status",
                           body={"status": status}, content_type=MERGE, ok=(404,))
