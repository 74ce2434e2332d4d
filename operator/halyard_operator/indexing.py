"""The operator's watch-fed indexes (kopf `@kopf.index`), and what wakes a reconcile.

kopf lists and watches Nodes, Pods, LLMDeployments and every kind of child,
and keeps for each object only what `observe.index` extracts; reconcile reads
them through `observe.view.ClusterView` and never lists or GETs. kopf starts
no resource handler before every index holds its initial list.

Events that matter wake the deployment they concern through the `Trigger`:
its children and its pods (worker and router), and Node changes that matter
(labels, taints, allocatable GPUs, cordoning, interruption notices; not the
kubelet's heartbeats, which change none of these).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import kopf

from halyard_operator.api import API_GROUP, API_VERSION, PLURAL
from halyard_operator.observe import read_node
from halyard_operator.observe.read import pod_gpus
from halyard_operator.observe.index import child_entries, llmd_entries, node_entries, pod_entries, poked_deployment
from halyard_operator.observe.view import LLMDS, NODES, PODS, ClusterView
from halyard_operator.policy.interruption import detect

log = logging.getLogger(__name__)

# index name -> (group, version, plural, kind) of each child kind
CHILD_KINDS = {
    "halyard_deployments": ("apps", "v1", "deployments", "Deployment"),
    "halyard_services": ("", "v1", "services", "Service"),
    "halyard_pdbs": ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    "halyard_serviceaccounts": ("", "v1", "serviceaccounts", "ServiceAccount"),
    "halyard_roles": ("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    "halyard_rolebindings": ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
}
INDEX_NAMES = (NODES, PODS, LLMDS, *CHILD_KINDS)


def register_indexes(registry: kopf.OperatorRegistry) -> None:
    """One index per watched kind (see `observe.index` for the keys)."""
    kopf.index("", "v1", "nodes", id=NODES, registry=registry)(_entries(node_entries))
    kopf.index("", "v1", "pods", id=PODS, registry=registry)(_entries(pod_entries))
    kopf.index(API_GROUP, API_VERSION, PLURAL, id=LLMDS, registry=registry)(_entries(llmd_entries))
    for name, (group, version, plural, kind) in CHILD_KINDS.items():
        kopf.index(group, version, plural, id=name, registry=registry)(
            _entries(lambda body, kind=kind: child_entries(kind, body)))


def _entries(extract: Callable[[Any], Any]):
    def handler(body: kopf.Body, **_: Any) -> Any:
        return extract(body)
    return handler


def view_of(kwargs: dict, node_version: Callable[[], int] | None = None) -> ClusterView:
    """The ClusterView over the indexes kopf passes a handler (its kwargs); `node_version`:
    `NodeWatch.version`, so the view derives the node tuple once per change that matters."""
    return ClusterView({name: kwargs[name] for name in INDEX_NAMES if name in kwargs},
                       node_version=node_version)


def register_wakeups(registry: kopf.OperatorRegistry, poke: Callable[[tuple[str, str]], None],
                     nodes: "NodeWatch", gpus_freed: Callable[[], None]) -> None:
    """Pod and child events poke their deployment; a GPU pod that goes away also calls
    `gpus_freed` (deployments held back for GPUs may now fit); Node events go through `nodes`."""

    async def object_event(body: kopf.Body, **_: Any) -> None:
        key = poked_deployment(body)
        if key is not None:
            poke(key)

    async def pod_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        await object_event(body)
        if type == "DELETED" and pod_gpus(body):
            gpus_freed()

    kopf.on.event("", "v1", "pods", id="halyard_pod_events", registry=registry)(pod_event)
    for name, (group, version, plural, _) in CHILD_KINDS.items():
        kopf.on.event(group, version, plural, id=f"{name}_events", registry=registry)(object_event)

    async def node_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        nodes.changed(body, type)

    kopf.on.event("", "v1", "nodes", id="halyard_node_events", registry=registry)(node_event)


class NodeWatch:
    """Decides which Node events matter. A new interruption notice pokes the
    deployments with pods on that node at once; any other change to what the
    policies read of a node (NodeInfo) pokes every deployment, coalesced, and
    bumps `version` (kopf updates the node index before calling this)."""

    def __init__(self, view: Callable[[], ClusterView | None], poke: Callable[[tuple[str, str]], None],
                 poke_all: Callable[[], None]):
        self.view, self.poke, self.poke_all = view, poke, poke_all
        self.seen: dict[str, tuple] = {}  # node -> what the policies read of it
        self.noticed: set[str] = set()
        self.version = 0

    def current(self) -> int:
        return self.version

    def changed(self, body, type_: str | None) -> None:
        name = (body.get("metadata") or {}).get("name", "")
        if type_ == "DELETED":
            self.seen.pop(name, None)
            self.noticed.discard(name)
            self.version += 1
            self.poke_all()
            return
        info = read_node(body)
        notice = detect(info)
        relevant = (info.labels, info.taint_keys, info.gpus, info.schedulable, notice)
        if self.seen.get(name) == relevant:
            return  # a heartbeat, or an annotation nothing reads (e.g. the TTL controller's)
        self.seen[name] = relevant
        self.version += 1
        if notice is None:
            self.noticed.discard(name)
        elif name not in self.noticed:
            self.noticed.add(name)
            log.info("Node %s has %s: reconciling its LLMDeployments", name, notice.source)
            view = self.view()
            for key in sorted(view.owners_on(name) if view else ()):
                self.poke(key)
        self.poke_all()
