"""Fake GPU node pools: labels/taints per provider preset, loopback pod CIDRs."""
from __future__ import annotations

import ipaddress

import pytest

from halyard.dev.nodes import PoolPlan, pool_nodes


def test_karpenter_pools_are_labelled_gpu_tainted_with_distinct_loopback_cidrs():
    nodes = pool_nodes(PoolPlan(on_demand_nodes=2, spot_nodes=3, gpus_per_node=4))
    assert [n["metadata"]["labels"]["karpenter.sh/capacity-type"] for n in nodes] == ["on-demand"] * 2 + ["spot"] * 3
    cidrs = [ipaddress.ip_network(n["spec"]["podCIDR"]) for n in nodes]
    assert all(c.subnet_of(ipaddress.ip_network("127.0.0.0/8")) for c in cidrs)
    assert len(set(cidrs)) == 5
    for node in nodes:
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_aks_spot_pool_carries_the_spot_taint():
    spot = pool_nodes(PoolPlan(on_demand_nodes=0, spot_nodes=1, preset="aks", gpu_taint=False))[0]
    assert spot["spec"]["taints"] == [
        {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}]


def test_bad_plan_names_the_field():
    with pytest.raises(ValueError, match="preset"):
        PoolPlan(preset="openstack")
    with pytest.raises(ValueError, match="spot_nodes"):
        PoolPlan(spot_nodes=-1)
