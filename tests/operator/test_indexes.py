"""The watch-fed indexes and what wakes a reconcile: index entries, the
ClusterView over them, coalesced pokes, Node changes that matter, and the
fast loop's isolation of slow deployments."""
from __future__ import annotations

import asyncio

from halyard_operator.builders.meta import Owner
from halyard_operator.indexing import NodeWatch
from halyard_operator.names import INTERRUPTION_KEY
from halyard_operator.observe.index import (
    CLAIMS, ROUTERS, WORKERS, child_entries, llmd_entries, node_entries, pod_entries, poked_deployment,
)
from halyard_operator.observe.read import pod_gpus
from halyard_operator.observe.view import LLMDS, NODES, PODS, ClusterView
from halyard_operator.reconcile.failures import recheck_after
from halyard_operator.trigger import Trigger, fast_loop

OWNER = Owner("chat", "team-a", "u1")
REF = {"apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment", "name": "chat", "uid": "u1",
       "controller": True}


def pod(name: str, labels: dict, node: str = "n1", gpus: int = 0, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": "team-a", "labels": labels, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def view_of(*entries: dict, nodes=None) -> ClusterView:
    """A ClusterView over plain dicts, as kopf's indexes would hold these entries."""
    indices: dict = {}
    for index, entry in entries:
        for key, value in entry.items():
            indices.setdefault(index, {}).setdefault(key, []).append(value)
    for body in nodes or ():
        for key, value in node_entries(body).items():
            indices.setdefault(NODES, {}).setdefault(key, []).append(value)
    return ClusterView(indices)


def test_pods_are_indexed_by_deployment_role_or_gpu_claim():
    worker = pod("chat-ondemand-a", {"halyard.dev/deployment": "chat"})
    router = pod("chat-router-a", {"halyard.dev/router": "chat"})
    other = pod("trainer", {}, node="n2", gpus=4)
    assert list(pod_entries(worker)) == [(WORKERS, "team-a", "chat")]
    assert list(pod_entries(router)) == [(ROUTERS, "team-a", "chat")]
    assert pod_entries(other)[(CLAIMS,)].gpus == 4
    assert pod_entries(pod("web", {})) is None  # no GPUs, not ours: not kept at all
    assert poked_deployment(worker) == poked_deployment(router) == ("team-a", "chat")


def test_children_are_indexed_by_owner_without_managed_fields():
    dep = {"metadata": {"name": "chat-ondemand", "namespace": "team-a", "ownerReferences": [REF],
                        "managedFields": [{"manager": "x"}]}, "spec": {"replicas": 2}}
    (key, ((kind, name), packed)), = child_entries("Deployment", dep).items()
    obj = packed.load()
    assert key == ("team-a", "chat") and (kind, name) == ("Deployment", "chat-ondemand")
    assert "managedFields" not in obj["metadata"] and obj["spec"] == {"replicas": 2}
    foreign = {"metadata": {"name": "x", "namespace": "team-a",
                            "ownerReferences": [{**REF, "kind": "ReplicaSet", "apiVersion": "apps/v1"}]}}
    assert child_entries("Deployment", foreign) is None
    assert poked_deployment(dep) == ("team-a", "chat")


def test_view_reads_children_across_kinds_and_ages_pods_at_read_time():
    svc = {"metadata": {"name": "chat", "namespace": "team-a", "ownerReferences": [REF]}}
    dep = {"metadata": {"name": "chat", "namespace": "team-a", "ownerReferences": [REF]}}
    created = "2026-01-01T00:00:00Z"
    view = view_of(("halyard_services", child_entries("Service", svc)),
                   ("halyard_deployments", child_entries("Deployment", dep)),
                   (PODS, pod_entries(pod("chat-ondemand-b", {"halyard.dev/deployment": "chat"}, created=created))),
                   (PODS, pod_entries(pod("chat-ondemand-a", {"halyard.dev/deployment": "chat"}, created=created))),
                   (PODS, pod_entries(pod("trainer", {}, node="n2", gpus=2))))
    assert set(view.children(OWNER)) == {("Service", "chat"), ("Deployment", "chat")}
    epoch = 1767225600.0  # 2026-01-01T00:00:00Z
    pods = view.pods(OWNER, now=epoch + 42)
    assert [p.name for p in pods] == ["chat-ondemand-a", "chat-ondemand-b"] and pods[0].age_s == 42
    assert view.pods(OWNER, now=epoch + 50)[0].age_s == 50  # same snapshot, later read
    assert [c.gpus for c in view.gpu_claims()] == [2]
    assert view.owners_on("n1") == {("team-a", "chat")} and view.owners_on("n2") == set()
    assert view.children(Owner("other", "team-a", "u2")) == {}


def test_deployments_held_back_for_gpus_are_found_when_gpus_come_free():
    def llmd(name: str, constrained: str | None) -> dict:
        conditions = [] if constrained is None else [{"type": "CapacityConstrained", "status": constrained}]
        return {"metadata": {"name": name, "namespace": "team-a"}, "status": {"conditions": conditions}}

    view = view_of(*((LLMDS, llmd_entries(llmd(n, c))) for n, c in
                     (("batch", "True"), ("chat", "False"), ("fresh", None))))
    assert view.held_back_keys() == [("team-a", "batch")]
    assert view.deployment(("team-a", "batch"))["status"]["conditions"][0]["status"] == "True"
    assert view.deployment(("team-a", "gone")) is None


def test_the_fast_loop_walks_only_autoscaled_or_spot_deployments():
    def llmd(name: str, spec: dict) -> dict:
        return {"metadata": {"name": name, "namespace": "team-a"}, "spec": spec}

    view = view_of(*((LLMDS, llmd_entries(llmd(n, spec))) for n, spec in (
        ("fixed", {"replicas": 2}), ("elastic", {"scaling": {"maxReplicas": 4}}),
        ("hedged", {"capacity": {"spot": {"enabled": True}}}), ("off", {"capacity": {"spot": {"enabled": False}}}))))
    assert sorted(view.fast_keys()) == [("team-a", "elastic"), ("team-a", "hedged")]
    first = view.deployment(("team-a", "elastic"))
    first["spec"]["scaling"]["maxReplicas"] = 9  # a caller's change stays its own
    assert view.deployment(("team-a", "elastic"))["spec"]["scaling"]["maxReplicas"] == 4
    assert pod_gpus(pod("worker", {}, gpus=2)) == 2 and pod_gpus(pod("web", {})) == 0


def test_nodes_unknown_without_permission():
    assert ClusterView({}, nodes_known=False).nodes() is None
    assert ClusterView({}).nodes() == ()


def test_an_unschedulable_pod_is_rechecked_when_it_comes_due():
    from halyard_operator.observe.types import ObservedPod

    waiting = ObservedPod("p", "ondemand", None, False, 5.0, scheduled=False, unschedulable="0/3 nodes",
                          unschedulable_s=12.0)
    assert recheck_after([waiting]) == 18.0
    assert recheck_after([]) is None


async def test_a_burst_of_pokes_is_one_reconcile_and_a_poke_during_one_queues_one_more():
    runs: list = []
    gate = asyncio.Event()
    trigger: Trigger

    async def run(key):
        trigger.started(key)
        runs.append(key)
        await gate.wait()

    trigger = Trigger(run, lambda: [("ns", "a"), ("ns", "b")], delay_s=0.01)
    for _ in range(5):
        trigger.poke(("ns", "a"))
    await asyncio.sleep(0.05)
    assert runs == [("ns", "a")]
    for _ in range(3):  # during the reconcile: exactly one more
        trigger.poke(("ns", "a"))
    gate.set()
    await asyncio.sleep(0.05)
    assert runs == [("ns", "a")] * 2
    trigger.poke_all()
    trigger.poke_all()
    await asyncio.sleep(0.1)
    assert sorted(runs[2:]) == [("ns", "a"), ("ns", "b")]


def node(name: str, labels: dict | None = None, annotations: dict | None = None, heartbeat: str = "t0") -> dict:
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": "8"},
                                   "conditions": [{"type": "Ready", "lastHeartbeatTime": heartbeat}]}}


def test_node_heartbeats_wake_nothing_and_real_changes_wake_the_fleet():
    pokes, alls = [], []
    view = view_of((PODS, pod_entries(pod("chat-ondemand-a", {"halyard.dev/deployment": "chat"}, node="n1"))))
    watch = NodeWatch(lambda: view, pokes.append, lambda: alls.append(1))
    watch.changed(node("n1"), "ADDED")
    assert len(alls) == 1
    watch.changed(node("n1", heartbeat="t1"), "MODIFIED")  # only the kubelet's heartbeat moved
    watch.changed(node("n1", annotations={"node.alpha.kubernetes.io/ttl": "15"}), "MODIFIED")
    assert len(alls) == 1 and pokes == []
    watch.changed(node("n1", labels={"nvidia.com/gpu.product": "L4"}), "MODIFIED")
    assert len(alls) == 2
    notice = {INTERRUPTION_KEY: "true"}
    watch.changed(node("n1", annotations=notice), "MODIFIED")
    watch.changed(node("n1", annotations=notice, heartbeat="t2"), "MODIFIED")
    assert pokes == [("team-a", "chat")]  # once per notice, the deployments with pods there
    watch.changed(node("n1"), "DELETED")
    assert len(alls) == 4


def test_the_view_rebuilds_its_node_tuple_only_for_node_changes_that_matter():
    indices: dict = {NODES: {}}
    watch = NodeWatch(lambda: None, lambda key: None, lambda: None)
    view = ClusterView(indices, node_version=watch.current)

    def event(body: dict, type_: str = "MODIFIED") -> None:  # kopf indexes first, then calls the handler
        indices[NODES].update({k: [v] for k, v in node_entries(body).items()})
        watch.changed(body, type_)

    event(node("n1"), "ADDED")
    event(node("n2"), "ADDED")
    first = view.nodes()
    assert [n.name for n in first] == ["n1", "n2"]
    event(node("n1", heartbeat="t1"))
    assert view.nodes() is first  # a heartbeat: nothing a policy reads changed
    event(node("n1", labels={"nvidia.com/gpu.product": "L4"}))
    assert view.nodes()[0].labels == {"nvidia.com/gpu.product": "L4"}
    del indices[NODES]["n2"]
    watch.changed(node("n2"), "DELETED")
    assert [n.name for n in view.nodes()] == ["n1"]


async def test_a_slow_deployment_does_not_delay_the_others_in_the_fast_loop():
    done: dict = {}
    start = asyncio.get_running_loop().time()

    async def sample(key):
        if key == "slow":
            await asyncio.sleep(1.0)  # a dead pod's scrape timing out
        done.setdefault(key, asyncio.get_running_loop().time() - start)

    task = asyncio.create_task(fast_loop(0.05, lambda: ["slow", "a", "b"], sample, concurrency=2))
    await asyncio.sleep(0.3)
    task.cancel()
    assert done.get("a", 9) < 0.2 and done.get("b", 9) < 0.2 and "slow" not in done


def test_own_writes_cover_the_index_until_the_watch_catches_up():
    from halyard_operator.reconcile.memory import Written

    now = [0.0]
    memo = Written(ttl_s=30.0, clock=lambda: now[0])
    old = {"metadata": {"name": "chat", "resourceVersion": "5"}, "spec": {"replicas": 1}}
    new = {"metadata": {"name": "chat", "resourceVersion": "7"}, "spec": {"replicas": 2}}
    svc = {"metadata": {"name": "gone"}}  # no resourceVersion (the test emulator keeps none)
    indexed = {("Deployment", "chat"): old, ("Service", "gone"): svc}
    memo.wrote_children("k", {("Deployment", "chat"): new, ("Service", "gone"): None}, indexed)
    assert memo.children_over("k", indexed) == {("Deployment", "chat"): new}  # not yet watched
    assert memo.children_over("k", {("Deployment", "chat"): new, ("Service", "gone"): svc}) == {
        ("Deployment", "chat"): new}
    assert ("Deployment", "chat") not in memo.children["k"]  # caught up (resourceVersion 7): forgotten
    again = {**svc, "spec": {"ports": [{"port": 80}]}}  # re-created by someone else: another object
    assert memo.children_over("k", {("Service", "gone"): again}) == {("Service", "gone"): again}
    memo.wrote_children("k", {("Service", "gone"): None}, {("Service", "gone"): svc})
    now[0] = 31.0  # never delivered: the memory lasts ttl_s
    assert memo.children_over("k", {("Service", "gone"): svc}) == {("Service", "gone"): svc}
    memo.wrote_status("k", {"replicas": 2})
    memo.wrote_state("k", '{"desired":2}')
    body = memo.body_over("k", {"metadata": {"name": "chat"}, "status": {"replicas": 1, "endpoint": "e"}})
    assert body["status"] == {"replicas": 2, "endpoint": "e"}
    assert body["metadata"]["annotations"]["halyard.dev/scaling-state"] == '{"desired":2}'
    watched = {"metadata": {"name": "chat", "annotations": {"halyard.dev/scaling-state": '{"desired":2}'}},
               "status": {"replicas": 2, "endpoint": "e"}}
    assert memo.body_over("k", watched) == watched  # the watch caught up: nothing is kept
    assert "k" not in memo.status and "k" not in memo.state


def test_own_writes_of_a_deployment_never_reconciled_again_are_dropped_and_kept_without_managed_fields():
    from halyard_operator.reconcile.memory import Written

    now = [0.0]
    memo = Written(ttl_s=30.0, clock=lambda: now[0])
    answer = {"metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{"manager": "halyard"}]}}
    memo.wrote_children("team-a/quiet", {("Deployment", "a"): answer}, {})
    kept, _, _ = memo.children["team-a/quiet"][("Deployment", "a")]
    assert "managedFields" not in kept["metadata"] and kept["metadata"]["resourceVersion"] == "3"
    now[0] = 31.0  # the quiet deployment is not reconciled again; another one writes
    memo.wrote_children("team-a/busy", {("Deployment", "b"): {"metadata": {"name": "b"}}}, {})
    assert "team-a/quiet" not in memo.children and "team-a/busy" in memo.children
