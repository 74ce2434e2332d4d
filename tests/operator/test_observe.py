"""Observe: Kubernetes objects -> typed observations (pure readers)."""
from __future__ import annotations

from halyard_operator.observe import node_labels, read_gpu_claims, read_node, read_observed, read_pod
from halyard_operator.policy.interruption import detect


def test_observed_pod_from_an_api_object():
    obj = {"metadata": {"name": "chat-8b-spot-x", "labels": {"halyard.dev/pool": "spot"},
                        "creationTimestamp": "2026-11-22T04:00:00Z"},
           "spec": {"nodeName": "spot-1"},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    pod = read_pod(obj, now=1_795_320_060.0)  # 2026-11-22T04:01:00Z
    assert pod.pool == "spot" and pod.ready and pod.node == "spot-1" and pod.age_s == 60.0
    pending = read_pod({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}, now=0.0)
    assert not pending.scheduled and not pending.ready


def test_node_objects_from_the_api():
    objs = [
        {"metadata": {"name": "gke-1"}, "spec": {"taints": [
            {"key": "cloud.google.com/impending-node-termination", "effect": "NoSchedule"}]}},
        {"metadata": {"name": "plain", "annotations": {"x": "y"}}, "spec": {}},
    ]
    assert read_node(objs[0]).taint_keys == ("cloud.google.com/impending-node-termination",)
    notices = [detect(read_node(obj)) for obj in objs]
    assert notices[1] is None and notices[0].source == "GKE impending node termination"


def test_node_gpus_labels_and_cordon_are_read():
    node = read_node({"metadata": {"name": "g", "labels": {"nvidia.com/gpu.product": "H100"}},
                      "spec": {"unschedulable": True}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}})
    assert (node.gpus, node.schedulable, node.labels["nvidia.com/gpu.product"]) == (8, False, "H100")


def test_gpu_claims_count_bound_live_pods_outside_halyard_only():
    def pod(name, node, phase="Running", labels=None, gpus="1"):
        return {"metadata": {"name": name, "labels": labels or {}},
                "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"nvidia.com/gpu": gpus}}}]},
                "status": {"phase": phase}}

    claims = read_gpu_claims([pod("a", "n1", gpus="2"), pod("done", "n1", phase="Succeeded"),
                              pod("unbound", None), pod("ours", "n1", labels={"halyard.dev/deployment": "x"})])
    assert [(c.node, c.gpus) for c in claims] == [("n1", 2)]


def test_unlistable_nodes_stay_unknown():
    assert node_labels(read_observed(0.0, nodes=None)) is None
    assert node_labels(read_observed(0.0, nodes=[])) == ()
