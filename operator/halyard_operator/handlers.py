"""kopf handlers: thin shims into reconcile().

`build_registry()` returns a fresh kopf registry, so the console script and
the integration tests run exactly the same handlers. create/update/resume,
the periodic timer, the metrics timer (autoscaled objects: scrape, then
reconcile) and Node interruption notices all call `reconcile()`, one at a
time per object; deletion only forgets the object's in-memory signals
(owner references let the garbage collector remove the children).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

import kopf

from halyard_operator.api import API_GROUP, API_VERSION, PLURAL
from halyard_operator.config import OperatorConfig
from halyard_operator.kube.client import KubeClient
from halyard_operator.kube.connection import Connection
from halyard_operator.kube.events import EventRecorder
from halyard_operator.observe import read_node
from halyard_operator.names import (
    DEPLOYMENT_LABEL, KOPF_DIFFBASE_KEY, KOPF_FINALIZER, KOPF_PREFIX, STATE_ANNOTATION,
)
from halyard_operator.policy.interruption import detect
from halyard_operator.reconcile import ReconcileContext, reconcile
from halyard_operator.reconcile.scaling import key_of
from halyard_operator.reconcile.core import owner_of
from halyard_operator.signals.hub import MetricsHub
from halyard_operator.telemetry import OperatorMetrics

log = logging.getLogger(__name__)


def configure(settings: kopf.OperatorSettings) -> None:
    """Operator-wide kopf settings: no peering (one replica, Recreate
    strategy), no CRD/namespace scanning, state in halyard.dev annotations, and no Events from
    kopf itself: the operator's EventRecorder writes every Event (reportingComponent halyard-operator)."""
    settings.peering.standalone = True
    # No CRD or namespace watching: the watched namespaces are given exactly
    # (or all), and the CRD is installed before the operator starts.
    settings.scanning.disabled = True
    settings.posting.enabled = False
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    # The scaling state annotation changes with every decision: not a change to handle.
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key=KOPF_DIFFBASE_KEY,
        ignored_fields=[("metadata", "annotations", STATE_ANNOTATION)])
    settings.persistence.finalizer = KOPF_FINALIZER
    # Stop promptly: a per-object worker gets 0.1 s (kopf's default: 2 s) to
    # finish its queue when the operator stops; the level-triggered reconcile
    # of the next leader (or the next start) redoes whatever was cut short.
    settings.batching.exit_timeout = 0.1
    # A deletion waits for a timer's reconcile in flight to end; kopf checks
    # again only every cancellation_polling seconds (default 60), so a delete
    # that met a periodic reconcile kept its finalizer for a minute.
    settings.background.cancellation_polling = 0.5


def _locked_reconcile(state: dict, locks: dict, telemetry: OperatorMetrics):
    async def run(body: dict, sample: bool = False) -> None:
        """reconcile() under the object's lock (handlers, timers and node notices may overlap)."""
        if "ctx" not in state:  # the operator is shutting down
            return
        async with locks[key_of(owner_of(body))]:
            started = time.perf_counter()
            try:
                await reconcile(state["ctx"], body, sample=sample)
            except Exception as exc:
                telemetry.reconciled(time.perf_counter() - started, exc)
                raise
            telemetry.reconciled(time.perf_counter() - started)
    return run


def connection_info(connection: Connection) -> kopf.ConnectionInfo:
    """kopf's credentials from the operator's own connection (in-cluster or kubeconfig)."""
    return kopf.ConnectionInfo(
        server=connection.server, token=connection.bearer(), scheme="Bearer" if connection.bearer() else None,
        ca_path=connection.ca_path, certificate_path=connection.cert_path,
        private_key_path=connection.key_path, insecure=connection.insecure or None)


def build_registry(config: OperatorConfig, connection: Connection,
                   telemetry: OperatorMetrics | None = None) -> kopf.OperatorRegistry:
    """`telemetry`: the metrics the endpoint serves (a fresh set when None)."""
    registry = kopf.OperatorRegistry()
    telemetry = telemetry or OperatorMetrics()
    state: dict[str, Any] = {}
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    resource = (API_GROUP, API_VERSION, PLURAL)

    run = _locked_reconcile(state, locks, telemetry)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)
        state["kube"] = await KubeClient(connection).__aenter__()
        hub = MetricsHub(window_s=config.metrics_window, stale_after_s=3 * config.metrics_interval,
                         prometheus_url=config.prometheus_url)
        state["events"] = EventRecorder(state["kube"])
        state["ctx"] = ReconcileContext(kube=state["kube"], config=config, events=state["events"], hub=hub,
                                        telemetry=telemetry)
        telemetry.leader.set(1)
        state["noticed"] = set()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        state.pop("ctx", None)  # late timer ticks see no context and return
        telemetry.leader.set(0)
        if "events" in state:
            await state.pop("events").aclose()
        if "kube" in state:
            await state.pop("kube").__aexit__(None, None, None)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(connection)

    @kopf.on.resume(*resource, registry=registry, backoff=10)
    @kopf.on.create(*resource, registry=registry, backoff=10)
    @kopf.on.update(*resource, registry=registry, backoff=10)
    async def changed(body: kopf.Body, **_: Any) -> None:
        await run(_plain(body))

    @kopf.timer(*resource, registry=registry, interval=config.reconcile_interval,
                initial_delay=config.reconcile_interval, idle=None)
    async def periodic(body: kopf.Body, **_: Any) -> None:
        await run(_plain(body))

    @kopf.timer(*resource, registry=registry, interval=config.metrics_interval, idle=None, when=_fast)
    async def autoscale(body: kopf.Body, **_: Any) -> None:
        """Sample the serving signals (autoscaled objects), then decide with them; spot
        users are re-decided as often, so a spot pool that cannot schedule falls back
        close to its pendingTimeout."""
        await run(_plain(body), sample=True)

    @kopf.on.delete(*resource, registry=registry, optional=True)
    async def deleted(body: kopf.Body, **_: Any) -> None:
        key = key_of(owner_of(_plain(body)))
        if "ctx" in state:
            state["ctx"].hub.forget(key)
            state["ctx"].book.forget(key)
            state["ctx"].telemetry.forget(owner_of(_plain(body)))
        locks.pop(key, None)

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def node_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        """An interruption notice reconciles every LLMDeployment with pods on that node at once."""
        if "ctx" in state and type != "DELETED":
            await on_node(state["ctx"], dict(body), state["noticed"], run)

    return registry


async def on_node(ctx: ReconcileContext, node: dict, noticed: set, run) -> None:
    """Reconcile once per new interruption notice (`noticed`: nodes already handled)."""
    name, notice = node["metadata"]["name"], detect(read_node(node))
    if notice is None:
        noticed.discard(name)
        return
    if name in noticed:
        return
    noticed.add(name)
    log.info("Node %s has %s: reconciling its LLMDeployments", name, notice.source)
    await reconcile_node(ctx, name, run)


async def reconcile_node(ctx: ReconcileContext, node: str, run) -> None:
    """Reconcile the LLMDeployments whose worker pods run on `node`."""
    pods = await ctx.kube.list("Pod", labels=DEPLOYMENT_LABEL, fields=f"spec.nodeName={node}")
    owners = {(p["metadata"]["namespace"], p["metadata"]["labels"][DEPLOYMENT_LABEL]) for p in pods}
    for ns, name in sorted(owners):
        body = await ctx.kube.get("LLMDeployment", name, ns)
        if body is not None:
            await run(body)


def _fast(spec: kopf.Spec, **_: Any) -> bool:
    """Objects whose decisions depend on live signals: autoscaled, or using spot."""
    return bool(spec.get("scaling")) or bool(((spec.get("capacity") or {}).get("spot") or {}).get("enabled"))


def _plain(body: kopf.Body) -> dict:
    """kopf's live Body view -> a plain dict snapshot."""
    return {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
