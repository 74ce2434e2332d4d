"""ClusterView: the read side of the watch-fed indexes (no API calls).

`indices` maps an index name (`observe.index` documents the keys) to a
mapping key -> collection of values, as kopf's `OperatorIndices` does; a
test can pass plain dicts of lists. Every read is a dictionary lookup, so a
reconcile costs the same whether the cluster has ten nodes or thousands.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

from halyard_operator.builders.meta import Owner
from halyard_operator.observe.index import CLAIMS, ROUTERS, WORKERS
from halyard_operator.observe.types import GpuClaim, NodeInfo, ObservedPod

NODES, PODS, LLMDS = "halyard_nodes", "halyard_pods", "halyard_llmds"
CHILD_INDEXES = ("halyard_deployments", "halyard_services", "halyard_pdbs", "halyard_serviceaccounts",
                 "halyard_roles", "halyard_rolebindings")


class ClusterView:
    """Nodes, worker and router pods, GPU claims, children and LLMDeployments as last watched."""

    def __init__(self, indices: Mapping[str, Mapping] | None = None, nodes_known: bool = True,
                 node_version: Callable[[], int] | None = None):
        """`node_version`: bumped on every Node change that matters (`indexing.NodeWatch`);
        with it `nodes()` returns the same tuple until the next one. None: built per call."""
        self._ix = indices or {}
        self.nodes_known = nodes_known  # False: nodes cannot be watched (no permission)
        self._node_version = node_version
        self._nodes: tuple[int, tuple[NodeInfo, ...]] | None = None  # (version, nodes)

    def _values(self, index: str, key) -> Iterable:
        found = self._ix.get(index)
        return found[key] if found is not None and key in found else ()

    def children(self, owner: Owner) -> dict[tuple[str, str], dict]:
        out = {}
        for index in CHILD_INDEXES:
            for key, packed in self._values(index, (owner.namespace, owner.name)):
                out[key] = packed.load()
        return out

    def pods(self, owner: Owner, now: float) -> tuple[ObservedPod, ...]:
        """The deployment's worker pods with ages at `now` (epoch s), by name."""
        snaps = self._values(PODS, (WORKERS, owner.namespace, owner.name))
        return tuple(sorted((s.at(now) for s in snaps), key=lambda p: p.name))

    def router_pods(self, owner: Owner) -> list[dict]:
        return list(self._values(PODS, (ROUTERS, owner.namespace, owner.name)))

    def nodes(self) -> tuple[NodeInfo, ...] | None:
        """Every node by name; None when nodes cannot be watched."""
        if not self.nodes_known:
            return None
        version = self._node_version() if self._node_version is not None else None
        if version is not None and self._nodes is not None and self._nodes[0] == version:
            return self._nodes[1]
        index = self._ix.get(NODES) or {}
        nodes = tuple(info for name in sorted(index) for info in index[name])
        if version is not None:
            self._nodes = (version, nodes)
        return nodes

    def gpu_claims(self) -> tuple[GpuClaim, ...]:
        return tuple(self._values(PODS, (CLAIMS,)))

    def deployment(self, key: tuple[str, str]) -> dict | None:
        """The LLMDeployment body last watched (a fresh copy), None when it is gone."""
        entry = next(iter(self._values(LLMDS, key)), None)
        return None if entry is None else entry.load()

    @property
    def deployments_known(self) -> bool:
        """Whether LLMDeployments are indexed here (False for a bare view in tests)."""
        return LLMDS in self._ix

    def deployment_exists(self, key: str) -> bool:
        """`key`: "namespace/name" (reconcile.scaling.key_of)."""
        namespace, _, name = key.partition("/")
        return bool(self._values(LLMDS, (namespace, name)))

    def deployment_keys(self) -> list[tuple[str, str]]:
        return list(self._ix.get(LLMDS) or {})

    def held_back_keys(self) -> list[tuple[str, str]]:
        """Deployments whose status says they wait for GPUs (CapacityConstrained True):
        a scan, only for GPU pods that go away."""
        index = self._ix.get(LLMDS) or {}
        return [key for key in list(index) for entry in index[key] if entry.held_back]

    def fast_keys(self) -> list[tuple[str, str]]:
        """Deployments decided on live signals every metrics interval (autoscaled or using spot)."""
        index = self._ix.get(LLMDS) or {}
        return [key for key in list(index) for entry in index[key] if entry.fast]

    def owners_on(self, node: str) -> set[tuple[str, str]]:
        """The deployments with a worker pod on `node` (a scan: only for rare node events)."""
        index = self._ix.get(PODS) or {}
        return {(key[1], key[2]) for key in list(index) if key[0] == WORKERS
                and any(s.pod.node == node for s in index[key])}

