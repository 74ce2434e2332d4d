"""kopf handlers: thin shims into reconcile().

`build_registry()` returns a fresh kopf registry, so the console script and
the integration tests run exactly the same handlers. The cluster is read from
watch-fed indexes (`indexing.py`); create/update/resume, events of a
deployment's children and pods, Node changes that matter, the fast loop
(autoscaled and spot objects: scrape, then reconcile) and the slow safety
net all call `reconcile()`, one at a time per object; deletion only forgets
the object's in-memory signals (owner references let the garbage collector
remove the children).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

import kopf

from halyard_operator import indexwait
from halyard_operator.api import API_GROUP, API_VERSION, PLURAL
from halyard_operator.config import OperatorConfig
from halyard_operator.heap import trim_loop
from halyard_operator.kube.client import KubeClient
from halyard_operator.kube.connection import Connection
from halyard_operator.kube.events import EventRecorder
from halyard_operator.indexing import NodeWatch, register_indexes, register_wakeups, view_of
from halyard_operator.names import KOPF_DIFFBASE_KEY, KOPF_FINALIZER, KOPF_PREFIX, STATE_ANNOTATION
from halyard_operator.observe.live import SecretCache
from halyard_operator.reconcile import ReconcileContext, reconcile
from halyard_operator.reconcile.scaling import key_of
from halyard_operator.reconcile.core import memo_key, owner_of
from halyard_operator.signals.hub import MetricsHub
from halyard_operator.telemetry import OperatorMetrics
from halyard_operator.trigger import Trigger, fast_loop, safety_net

log = logging.getLogger(__name__)
MAX_CONCURRENT_RECONCILES = 8


def configure(settings: kopf.OperatorSettings) -> None:
    """Operator-wide kopf settings: no peering (one replica runs kopf: the Lease holder),
    no CRD/namespace scanning, state in halyard.dev annotations, and no Events from
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
    # A deletion waits for a reconcile in flight to end; kopf checks again
    # only every cancellation_polling seconds (default 60), so a delete that
    # met a running reconcile kept its finalizer for a minute.
    settings.background.cancellation_polling = 0.5


def _locked_reconcile(state: dict, locks: dict, telemetry: OperatorMetrics):
    """reconcile() under the object's lock, at most MAX_CONCURRENT_RECONCILES at once
    (controller-runtime's MaxConcurrentReconciles): a burst of creates or a fleet-wide
    poke must not flood the API server with writes."""
    slots = asyncio.Semaphore(MAX_CONCURRENT_RECONCILES)

    async def run(body: dict, sample: bool = False) -> None:
        if "ctx" not in state:  # the operator is shutting down
            return
        owner = owner_of(body)
        async with locks[key_of(owner)], slots:
            state["trigger"].started((owner.namespace, owner.name))
            started = time.perf_counter()
            try:
                plan = await reconcile(state["ctx"], body, sample=sample)
            except Exception as exc:
                telemetry.reconciled(time.perf_counter() - started, exc)
                raise
            telemetry.reconciled(time.perf_counter() - started)
        if plan.recheck_after is not None:
            state["trigger"].poke_later((owner.namespace, owner.name), plan.recheck_after + 0.5)
    return run


def _indexed_trigger(state: dict, run) -> tuple[Trigger, Any, Any, Any]:
    """The Trigger that reconciles deployments by key from the index, with the key
    lists the safety net (all) and the fast loop (autoscaled or spot) walk."""
    async def run_key(key: tuple[str, str], sample: bool = False) -> None:
        """Reconcile the deployment as the index last saw it (nothing when it is gone)."""
        body = state["ctx"].view.deployment(key) if "ctx" in state else None
        if body is not None and not (body.get("metadata") or {}).get("deletionTimestamp"):
            await run(body, sample=sample)
        else:
            trigger.started(key)

    def keys() -> list[tuple[str, str]]:
        return state["ctx"].view.deployment_keys() if "ctx" in state else []

    def fast_keys() -> list[tuple[str, str]]:
        return state["ctx"].view.fast_keys() if "ctx" in state else []

    trigger = state["trigger"] = Trigger(run_key, keys)
    return trigger, keys, fast_keys, run_key


def connection_info(connection: Connection) -> kopf.ConnectionInfo:
    """kopf's credentials from the operator's own connection (in-cluster or kubeconfig)."""
    return kopf.ConnectionInfo(
        server=connection.server, token=connection.bearer(), scheme="Bearer" if connection.bearer() else None,
        ca_path=connection.ca_path, certificate_path=connection.cert_path,
        private_key_path=connection.key_path, insecure=connection.insecure or None)


def build_registry(config: OperatorConfig, connection: Connection,
                   telemetry: OperatorMetrics | None = None) -> kopf.OperatorRegistry:
    """`telemetry`: the metrics the endpoint serves (a fresh set when None)."""
    indexwait.install()
    registry = kopf.OperatorRegistry()
    telemetry = telemetry or OperatorMetrics()
    state: dict[str, Any] = {}
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    resource = (API_GROUP, API_VERSION, PLURAL)
    run = _locked_reconcile(state, locks, telemetry)
    trigger, keys, fast_keys, run_key = _indexed_trigger(state, run)
    nodes = NodeWatch(lambda: state["ctx"].view if "ctx" in state else None, trigger.poke, trigger.poke_all)
    register_indexes(registry)
    register_wakeups(registry, trigger.poke, nodes, gpus_freed=lambda: _poke_held_back(state, trigger))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure(settings)
        state["kube"] = await KubeClient(connection).__aenter__()
        hub = MetricsHub(window_s=config.metrics_window, stale_after_s=3 * config.metrics_interval,
                         prometheus_url=config.prometheus_url)
        state["events"] = EventRecorder(state["kube"])
        state["ctx"] = ReconcileContext(kube=state["kube"], config=config, events=state["events"], hub=hub,
                                        telemetry=telemetry, view=view_of(kwargs, nodes.current),
                                        secrets=SecretCache(ttl_s=config.reconcile_interval))
        state["loops"] = [asyncio.create_task(fast_loop(config.metrics_interval, fast_keys,
                                                        lambda key: run_key(key, sample=True))),
                          asyncio.create_task(safety_net(config.reconcile_interval, keys, trigger.poke)),
                          asyncio.create_task(trim_loop())]
        telemetry.leader.set(1)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        state.pop("ctx", None)  # late pokes see no context and return
        for task in state.pop("loops", []):
            task.cancel()
        trigger.cancel()
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

    @kopf.on.delete(*resource, registry=registry, optional=True)
    async def deleted(body: kopf.Body, **_: Any) -> None:
        _forget(state, locks, trigger, _plain(body))

    @kopf.on.event(*resource, id="halyard_llmd_events", registry=registry)
    async def gone(body: kopf.Body, type: str | None, **_: Any) -> None:
        """The deletion itself (kopf may not call `deleted` for an object deleted without its finalizer)."""
        if type == "DELETED":
            _forget(state, locks, trigger, _plain(body))

    return registry


def _forget(state: dict, locks: dict, trigger: Trigger, body: dict) -> None:
    """A deleted deployment: drop its in-memory signals, demand and own-writes memory;
    its GPUs are free, so the deployments the tier arbiter held back are re-decided."""
    owner = owner_of(body)
    if "ctx" in state:
        state["ctx"].hub.forget(key_of(owner))
        state["ctx"].book.forget(key_of(owner))
        state["ctx"].telemetry.forget(owner)
        state["ctx"].written.forget(memo_key(owner))
    locks.pop(key_of(owner), None)
    _poke_held_back(state, trigger)


def _poke_held_back(state: dict, trigger: Trigger) -> None:
    """GPUs came free (a GPU pod is gone): the deployments the tier arbiter held back may fit now."""
    if "ctx" in state:
        for key in state["ctx"].view.held_back_keys():
            trigger.poke(key)


def _plain(body: kopf.Body) -> dict:
    """kopf's live Body view -> a plain dict snapshot."""
    return {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
