"""The kube client's tolerances against the emulator: 404 on read/delete,
409 on create, apply falling back to create where apply cannot create."""
from __future__ import annotations

import pytest

from halyard_operator.config import OperatorConfig
from halyard_operator.kube.apply import write
from halyard_operator.kube.client import KubeClient, KubeError
from halyard_operator.kube.connection import Connection
from halyard_operator.reconcile import ReconcileContext, reconcile
from tests.operator.conftest import RESOURCES

SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns"},
       "spec": {"ports": [{"port": 80}]}}


@pytest.fixture
async def kube(kmock):
    for key, info in RESOURCES.items():
        kmock.resources[key] = info
    async with KubeClient(Connection(server=str(kmock.url).rstrip("/"))) as client:
        yield client


async def test_missing_object_reads_as_none_and_deletes_as_false(kube):
    assert await kube.get("Service", "nope", "ns") is None
    assert await kube.delete("Service", "nope", "ns") is False


async def test_create_twice_returns_conflict_instead_of_raising(kube):
    assert (await kube.create(SVC))[0] < 300
    assert (await kube.create(SVC))[0] == 409
    assert await kube.delete("Service", "a", "ns") is True


async def test_write_creates_then_applies(kube, kmock):
    await write(kube, SVC)
    await write(kube, {**SVC, "spec": {"ports": [{"port": 81}]}})
    assert (await kube.get("Service", "a", "ns"))["spec"]["ports"] == [{"port": 81}]
    patches = [r for r in kmock if r.method == "PATCH"]
    assert {r.headers["Content-Type"] for r in patches} == {"application/apply-patch+yaml"}


async def test_unexpected_status_raises_with_the_path(kube):
    with pytest.raises(KubeError, match="GET /apis/apps/v1/namespaces/ns/deployments/x -> 404"):
        await kube.request("GET", "/apis/apps/v1/namespaces/ns/deployments/x")


async def test_reconcile_leaves_an_object_being_deleted_alone(kube, kmock):
    ctx = ReconcileContext(kube=kube, config=OperatorConfig(), events=lambda *a: None)
    body = {"metadata": {"name": "x", "namespace": "ns", "uid": "u", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"model": {"name": "m", "uri": "hf://o/r"}, "replicas": 1}}
    plan = await reconcile(ctx, body)
    assert plan.writes == () and list(kmock) == []


def test_namespaced_kind_without_namespace_lists_all_namespaces():
    from halyard_operator.kube.paths import collection_path

    assert collection_path("Pod") == "/api/v1/pods"
    assert collection_path("Pod", "team-a") == "/api/v1/namespaces/team-a/pods"
    assert collection_path("Node") == "/api/v1/nodes"
