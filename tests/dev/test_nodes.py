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


def test_system_nodes_take_pods_without_gpus_on_their_own_cidr():
    nodes = pool_nodes(PoolPlan(on_demand_nodes=1, spot_nodes=1, system_nodes=1))
    system = nodes[-1]
    assert system["metadata"]["name"] == "system-0" and not system["spec"].get("taints")
    assert "nvidia.com/gpu" not in system["status"]["allocatable"]
    cidrs = [ipaddress.ip_network(n["spec"]["podCIDR"]) for n in nodes]
    assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])


def test_runner_hands_api_credentials_only_to_pods_that_would_get_a_token(tmp_path):
    from halyard.dev.podrunner import RunnerConfig, base_env

    config = RunnerConfig(kubeconfig=tmp_path / "kubeconfig", log_dir=tmp_path, work_dir=tmp_path)
    router = {"spec": {"automountServiceAccountToken": True}}
    worker = {"spec": {"automountServiceAccountToken": False}}
    assert base_env(config, router)["KUBECONFIG"] == str(tmp_path / "kubeconfig")
    assert "KUBECONFIG" not in base_env(config, worker)
