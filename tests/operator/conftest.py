"""The real operator (kopf + our handlers) running against kmock's in-memory
Kubernetes API. kmock keeps objects as plain JSON: no resourceVersion
bookkeeping, no label selectors, no garbage collection, and a PATCH of any
content type is a merge patch of an existing object (see kube/apply.py)."""
from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import kopf
import pytest
import yaml
from kmock import KubernetesEmulator, ResourceInfo
from kmock._internal.enums import action

from halyard_operator.config import OperatorConfig
from halyard_operator.handlers import build_registry
from halyard_operator.kube.connection import Connection
from halyard_operator.telemetry import OperatorMetrics

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
NAMESPACE = "team-a"
LLMD = "halyard.dev/v1alpha1/llmdeployments"
_uids = itertools.count(1)

_WATCHED = {"get", "list", "watch", "patch", "create", "delete"}
RESOURCES = {
    LLMD: ResourceInfo(kind="LLMDeployment", namespaced=True, subresources={"status", "scale"},
                       verbs={"get", "list", "watch", "patch", "create", "delete"}),
    # Watched into the operator's indexes.
    **{resource: ResourceInfo(kind=kind, namespaced=True, verbs=_WATCHED)
       for resource, kind in (("apps/v1/deployments", "Deployment"), ("v1/services", "Service"),
                              ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget"), ("v1/pods", "Pod"),
                              ("v1/serviceaccounts", "ServiceAccount"),
                              ("rbac.authorization.k8s.io/v1/roles", "Role"),
                              ("rbac.authorization.k8s.io/v1/rolebindings", "RoleBinding"))},
    "v1/nodes": ResourceInfo(kind="Node", namespaced=False, verbs={"get", "list", "watch"}),
    "v1/secrets": ResourceInfo(kind="Secret", namespaced=True),
    "v1/events": ResourceInfo(kind="Event", namespaced=True),
    # kopf's backbone resources: discovered, never watched (scanning is disabled).
    "v1/namespaces": ResourceInfo(kind="Namespace", namespaced=False),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False),
}

# An EKS-like cluster: one on-demand and one spot H100 node.
NODES = [
    {"name": "gpu-od-1", "labels": {"eks.amazonaws.com/capacityType": "ON_DEMAND",
                                    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
    {"name": "gpu-spot-1", "labels": {"eks.amazonaws.com/capacityType": "SPOT",
                                      "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
]


def sample(name: str) -> dict:
    return yaml.safe_load((SAMPLES / name).read_text())


def seeded(obj: dict, namespace: str | None = NAMESPACE) -> dict:
    """An object as an API server would store it (uid, resourceVersion, generation)."""
    meta = dict(obj.get("metadata") or {})
    if namespace:
        meta["namespace"] = namespace
    meta.setdefault("uid", f"uid-{next(_uids)}")
    meta.setdefault("resourceVersion", "1")
    meta.setdefault("generation", 1)
    return {**obj, "metadata": meta}


class Cluster:
    """Helpers over the running emulator."""

    def __init__(self, kmock):
        self.kmock = kmock

    async def post(self, path: str, obj: dict) -> None:
        resp = await self.kmock.post(path, json=obj)
        assert resp.status < 300, await resp.text()

    async def create_llmd(self, obj: dict) -> dict:
        obj = seeded(obj)
        await self.post(f"/apis/halyard.dev/v1alpha1/namespaces/{NAMESPACE}/llmdeployments", obj)
        return obj

    def _live(self, resource: str):
        for (res, ns, name), obj in list(self.kmock.objects.items()):
            if f"{res.group}/{res.version}/{res.plural}".lstrip("/") == resource and not obj.deleted:
                yield ns, name, obj

    def get(self, resource: str, name: str, namespace: str = NAMESPACE) -> dict | None:
        for ns, n, obj in self._live(resource):
            if (ns, n) == (namespace, name):
                return obj.raw
        return None

    def names(self, resource: str) -> set[str]:
        return {name for _, name, _ in self._live(resource)}

    def events(self) -> list[dict]:
        """Every Event the operator posted (kmock stores only one: it does
        not implement generateName, so the requests are the record)."""
        return [r.data for r in self.requests() if r.method == "POST" and r.url.path.endswith("/events")]

    def requests(self) -> list:
        return list(self.kmock)

    def calls(self) -> list:
        """Every request but watches (kopf's watch streams stay open and reopen on their own)."""
        return [r for r in self.requests() if "watch=true" not in str(r.url).lower()]

    def reconciles(self) -> float:
        return self.telemetry.reconciles.labels(result="ok")._value.get()

    def writes(self, path_part: str) -> list:
        return [r for r in self.requests()
                if r.method in ("POST", "PATCH", "PUT", "DELETE") and path_part in str(r.url)]

    async def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition"):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)


@pytest.fixture
def operator_config() -> OperatorConfig:
    return OperatorConfig(reconcile_interval=1.0, default_image="halyard/worker:test")


class Emulator(KubernetesEmulator):
    """kmock that gives every created object a uid, as an API server does: kopf's
    indexes key objects by namespace, name and uid, and children share names across kinds."""

    async def _handle(self, request):
        data = request.data
        if request.action == action.CREATE and isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            data["metadata"].setdefault("uid", f"uid-{next(_uids)}")
        return await super()._handle(request)


@pytest.fixture
def kmock_options(kmock_options):
    return {**kmock_options, "cls": Emulator}


@pytest.fixture
async def cluster(kmock, operator_config):
    """kmock with the resources and nodes declared, and the operator running."""
    for key, info in RESOURCES.items():
        kmock.resources[key] = info
    c = Cluster(kmock)
    c.telemetry = OperatorMetrics()
    for node in NODES:
        await c.post("/api/v1/nodes", seeded({"apiVersion": "v1", "kind": "Node",
                                              "metadata": {"name": node["name"], "labels": node["labels"]}},
                                             namespace=None))
    registry = build_registry(operator_config, Connection(server=str(kmock.url).rstrip("/")), c.telemetry)
    # kopf cancels every task it did not see at start-up when it stops, so it
    # runs in its own thread and event loop, as in production.
    stop = threading.Event()
    thread = threading.Thread(target=asyncio.run, name="operator", daemon=True, args=(
        kopf.operator(registry=registry, standalone=True, clusterwide=True, stop_flag=stop,
                      settings=kopf.OperatorSettings()),))
    thread.start()
    try:
        yield c
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 20)
        assert not thread.is_alive(), "the operator did not stop"
