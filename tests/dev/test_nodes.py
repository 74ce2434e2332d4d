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


def test_cpu_pool_is_untainted_without_gpus_on_its_own_loopback_range():
    nodes = pool_nodes(PoolPlan(on_demand_nodes=1, spot_nodes=1, cpu_nodes=2))
    cpu = [n for n in nodes if n["metadata"]["labels"]["halyard.dev/dev-pool"] == "cpu"]
    assert [n["metadata"]["name"] for n in cpu] == ["cpu-0", "cpu-1"]
    for node in cpu:
        assert not node["spec"].get("taints")
        assert "nvidia.com/gpu" not in node["status"]["allocatable"]
        assert node["spec"]["podCIDR"].startswith("127.3.")
    assert len({n["spec"]["podCIDR"] for n in nodes}) == 4
