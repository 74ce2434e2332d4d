"""Failure and contention on the real control plane: operator crash, GPU
scarcity with priority preemption, spot node loss.

Worker pods here are placeholders (`HALYARD_DEV_RUNNER=skip`: the pod runner
starts no process), because these scenarios are about scheduling and
reconciliation; serving is covered by test_lifecycle.py.
"""
from __future__ import annotations

import time

import pytest

from e2e_kube import DEPLOYMENT_LABEL, condition, llmd, pool_of, wait_for

pytestmark = pytest.mark.e2e
PLACEHOLDER = {"env": [{"name": "HALYARD_DEV_RUNNER", "value": "skip"}]}


def placeholder(name, ns, uri, **spec):
    return llmd(name, ns, uri, template=PLACEHOLDER, **spec)


def _children(kubectl, ns, name):
    sel = f"{DEPLOYMENT_LABEL}={name}"
    return {kind: sorted(o["metadata"]["name"] for o in kubectl.items(kind, "-n", ns, "-l", sel))
            for kind in ("deployment", "service", "pdb")}


def _live_pods(kubectl, ns, name):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={name}")
            if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.parametrize("kill_after_s", [0.3, 1.5])
def test_operator_killed_mid_reconcile_converges(kubectl, operator, namespace, model_uri, kill_after_s):
    expected = {"deployment": ["c-ondemand", "c-router", "c-spot"], "service": ["c", "c-workers"],
                "pdb": ["c", "c-router"]}
    kubectl.apply(placeholder("c", namespace, model_uri, replicas=3,
                              capacity={"spot": {"enabled": True, "onDemandFloor": 1}}))
    time.sleep(kill_after_s)
    operator.kill()
    partial = _children(kubectl, namespace, "c")
    operator.start()
    wait_for(lambda: _children(kubectl, namespace, "c") == expected, 90,
             f"children converged after a crash (state at the crash: {partial})")
    wait_for(lambda: len(_live_pods(kubectl, namespace, "c")) == 3, 60, "3 pods")
    time.sleep(5)  # a few more resyncs must not add anything
    assert _children(kubectl, namespace, "c") == expected
    assert len(_live_pods(kubectl, namespace, "c")) == 3
    for rs in kubectl.items("replicaset", "-n", namespace):
        assert rs["metadata"].get("ownerReferences"), f"orphan {rs['metadata']['name']}"


@pytest.fixture
def scarce_pool(kubectl):
    """One extra on-demand node with 2 GPUs of a product nothing else has."""
    from halyard.dev.nodes import PoolPlan, pool_nodes

    plan = PoolPlan(on_demand_nodes=1, spot_nodes=0, gpus_per_node=2, gpu_product="NVIDIA-L4", prefix="l4",
                    octet=20)
    nodes = pool_nodes(plan)
    kubectl.apply(nodes)
    yield plan.gpu_product
    kubectl.run("delete", "node", *[n["metadata"]["name"] for n in nodes], "--wait=false", check=False)


def test_critical_preempts_batch_when_gpus_are_scarce(kubectl, operator, namespace, model_uri, scarce_pool):
    resources = {"gpus": 1, "gpuProduct": scarce_pool}
    kubectl.apply(placeholder("batch", namespace, model_uri, replicas=2, tier="batch", resources=resources))
    wait_for(lambda: len([p for p in _live_pods(kubectl, namespace, "batch") if p["spec"].get("nodeName")]) == 2,
             60, "2 batch pods on the scarce node")
    kubectl.apply(placeholder("crit", namespace, model_uri, replicas=1, tier="critical", resources=resources))

    def critical_bound():
        pods = [p for p in _live_pods(kubectl, namespace, "crit") if p["spec"].get("nodeName") == "l4-on-demand-0"]
        return pods

    pods = wait_for(critical_bound, 90, "the critical pod bound to the scarce node")
    assert pods[0]["spec"]["priority"] > 0
    assert pods[0]["spec"]["priorityClassName"] == "halyard-critical"
    batch = _live_pods(kubectl, namespace, "batch")
    bound = [p for p in batch if p["spec"].get("nodeName")]
    assert len(bound) == 1, [p["metadata"]["name"] for p in bound]  # one batch replica preempted
    # the scheduler's event recorder sends its events asynchronously, so the Event may trail the binding
    wait_for(lambda: kubectl.items("events", "-n", namespace, "--field-selector", "reason=Preempted"), 30,
             "a Preempted event from the scheduler")

    # The tier arbiter then shrinks batch to what is left: no replica stays Pending, and status says why.
    def batch_held_back():
        obj = kubectl.get_json("llmd", "batch", "-n", namespace)
        held = condition(obj, "CapacityConstrained") or {}
        live = _live_pods(kubectl, namespace, "batch")
        return (held.get("status") == "True" and len(live) == 1 and live[0]["spec"].get("nodeName")
                and obj["status"].get("desiredReplicas") == 1 and held)

    held = wait_for(batch_held_back, 90, "batch held back to 1 replica, none Pending")
    assert held["reason"] == "GPUsHeldByHigherTiers" and f"{namespace}/crit" in held["message"]
    kubectl.run("delete", "llmd", "crit", "-n", namespace)
    wait_for(lambda: len([p for p in _live_pods(kubectl, namespace, "batch") if p["spec"].get("nodeName")]) == 2,
             120, "batch back to 2 replicas once the critical deployment is gone")


def test_spot_node_loss_replaces_pods_and_keeps_the_floor(kubectl, operator, namespace, model_uri, nodes):
    kubectl.apply(placeholder("s", namespace, model_uri, replicas=3,
                              capacity={"spot": {"enabled": True, "onDemandFloor": 1}}))
    pods = wait_for(lambda: (ps := _live_pods(kubectl, namespace, "s")) and len(ps) == 3
                    and all(p["spec"].get("nodeName") for p in ps) and ps, 60, "3 scheduled pods")
    all_nodes = nodes()
    spot_pods = [p for p in pods if pool_of(p, all_nodes) == "spot"]
    assert len(spot_pods) == 2 and len(pods) - len(spot_pods) == 1
    victim = spot_pods[0]["spec"]["nodeName"]
    saved = all_nodes[victim]
    lost = {p["metadata"]["uid"] for p in pods if p["spec"]["nodeName"] == victim}
    kubectl.run("delete", "node", victim)
    try:
        def replaced():
            live = _live_pods(kubectl, namespace, "s")
            on_demand = [p for p in live if pool_of(p, nodes()) == "on-demand"]
            assert len(on_demand) >= 1, "on-demand floor broken"
            fresh = [p for p in live if p["metadata"]["uid"] not in lost and p["spec"].get("nodeName")
                     and p["spec"]["nodeName"] != victim]
            return len(fresh) == 3 and fresh

        fresh = wait_for(replaced, 180, f"pods of deleted node {victim} replaced")
        assert sorted(pool_of(p, nodes()) for p in fresh).count("on-demand") >= 1
    finally:
        meta = saved["metadata"]
        restored = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": meta["name"], "labels": meta["labels"], "annotations":
                                 {"kwok.x-k8s.io/node": "fake"}},
                    "spec": {k: saved["spec"][k] for k in ("podCIDR", "podCIDRs", "taints") if k in saved["spec"]},
                    "status": {"capacity": saved["status"]["capacity"],
                               "allocatable": saved["status"]["allocatable"]}}
        kubectl.apply(restored)
