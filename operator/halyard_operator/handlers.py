"""kopf handlers: thin shims into reconcile().

`build_registry()` returns a fresh kopf registry, so the console script and
the integration tests run exactly the same handlers. create/update/resume and
the periodic timer all call `reconcile()`; deletion needs no handler because
owner references let the garbage collector remove the children.
"""
from __future__ import annotations

import logging
from typing import Any

import kopf

from halyard_operator.api import API_GROUP, API_VERSION, PLURAL
from halyard_operator.config import OperatorConfig
from halyard_operator.kube.client import KubeClient
from halyard_operator.kube.connection import Connection
from halyard_operator.reconcile import ReconcileContext, reconcile

ANNOTATION_PREFIX = "halyard.dev"


def post_event(body: dict, type_: str, reason: str, message: str) -> None:
    """Queue a Kubernetes Event about `body` (posted by kopf's event poster)."""
    kopf.event(body, type=type_, reason=reason, message=message)


def configure(settings: kopf.OperatorSettings) -> None:
    """Operator-wide kopf settings: no peering (one replica, Recreate
    strategy), no CRD/namespace scanning, state in halyard.dev annotations, and kopf's own log lines
    become Events only for warnings (our reconcile posts the meaningful ones)."""
    settings.peering.standalone = True
    # No CRD or namespace watching: the watched namespaces are given exactly
    # (or all), and the CRD is installed before the operator starts.
    settings.scanning.disabled = True
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"


def build_registry(config: OperatorConfig, connection: Connection) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    state: dict[str, Any] = {}
    resource = (API_GROUP, API_VERSION, PLURAL)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)
        state["kube"] = await KubeClient(connection).__aenter__()
        state["ctx"] = ReconcileContext(kube=state["kube"], config=config, events=post_event)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        state.pop("ctx", None)  # late timer ticks see no context and return
        if "kube" in state:
            await state.pop("kube").__aexit__(None, None, None)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=connection.server, token=connection.bearer(), scheme="Bearer" if connection.bearer() else None,
            ca_path=connection.ca_path, certificate_path=connection.cert_path,
            private_key_path=connection.key_path, insecure=connection.insecure or None)

    @kopf.on.resume(*resource, registry=registry, backoff=10)
    @kopf.on.create(*resource, registry=registry, backoff=10)
    @kopf.on.update(*resource, registry=registry, backoff=10)
    async def changed(body: kopf.Body, **_: Any) -> None:
        await reconcile(state["ctx"], _plain(body))

    @kopf.timer(*resource, registry=registry, interval=config.reconcile_interval,
                initial_delay=config.reconcile_interval, idle=None)
    async def periodic(body: kopf.Body, **_: Any) -> None:
        if "ctx" in state:  # absent while the operator shuts down
            await reconcile(state["ctx"], _plain(body))

    return registry


def _plain(body: kopf.Body) -> dict:
    """kopf's live Body view -> a plain dict snapshot."""
    return {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
