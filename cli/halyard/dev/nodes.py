"""Fake GPU nodes in two capacity pools, labelled per a provider preset.

Pure builders: `pool_nodes(PoolPlan)` returns core/v1 Node dicts that kwok's
controller adopts (annotation `kwok.x-k8s.io/node: fake`). Each node gets a
loopback `spec.podCIDR` (`127.<octet>.<index>.0/24`; by default octet 1 for
on-demand, 2 for spot)
so the pod IPs kwok assigns are local addresses a real process can bind.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CAPACITY_TYPES = ("on-demand", "spot")
POOL_OFFSET = {"on-demand": 0, "spot": 1}  # added to PoolPlan.octet: second octet of pod CIDRs
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
POOL_LABEL = "halyard.dev/dev-pool"  # on-demand|spot on every dev node, whatever the preset


@dataclass(frozen=True)
class Taint:
    """A node taint (core/v1 Taint)."""

    key: str
    value: str
    effect: str = "NoSchedule"

    def as_dict(self) -> dict:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class ProviderPreset:
    """How a node provisioner marks capacity type: labels and taints per pool."""

    name: str
    labels: dict  # capacity type -> {label: value}
    taints: dict = field(default_factory=dict)  # capacity type -> tuple[Taint, ...]


PRESETS = {
    "karpenter": ProviderPreset(
        "karpenter",
        {"on-demand": {"karpenter.sh/capacity-type": "on-demand"},
         "spot": {"karpenter.sh/capacity-type": "spot"}}),
    "eks": ProviderPreset(
        "eks",
        {"on-demand": {"eks.amazonaws.com/capacityType": "ON_DEMAND"},
         "spot": {"eks.amazonaws.com/capacityType": "SPOT"}}),
    "gke": ProviderPreset(
        "gke",
        {"on-demand": {}, "spot": {"cloud.google.com/gke-spot": "true"}},
        {"spot": (Taint("cloud.google.com/gke-spot", "true"),)}),
    "aks": ProviderPreset(
        "aks",
        {"on-demand": {"kubernetes.azure.com/scalesetpriority": "regular"},
         "spot": {"kubernetes.azure.com/scalesetpriority": "spot"}},
        {"spot": (Taint("kubernetes.azure.com/scalesetpriority", "spot"),)}),
}


@dataclass(frozen=True)
class PoolPlan:
    """Shape of the fake fleet: nodes per pool and GPUs per node."""

    on_demand_nodes: int = 2
    spot_nodes: int = 2
    gpus_per_node: int = 2
    preset: str = "karpenter"
    gpu_product: str = GPU_PRODUCT
    gpu_taint: bool = True  # taint every node nvidia.com/gpu=present:NoSchedule, as GKE/AKS do
    prefix: str = "gpu"  # node names <prefix>-<capacity type>-<index>
    octet: int = 1  # pod CIDRs 127.<octet + pool>.<index>.0/24; pools of other plans need other octets
    system_nodes: int = 0  # untainted CPU nodes `system-<index>` (routers, anything without a GPU)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"preset: unknown provider {self.preset!r}; use one of {sorted(PRESETS)}")
        for name in ("on_demand_nodes", "spot_nodes", "system_nodes"):
            if not 0 <= getattr(self, name) <= 250:
                raise ValueError(f"{name}: must be between 0 and 250")
        if not 1 <= self.octet <= 250:
            raise ValueError("octet: must be between 1 and 250")
        if self.gpus_per_node < 0:
            raise ValueError("gpus_per_node: must be >= 0")


def node_name(plan: PoolPlan, capacity_type: str, index: int) -> str:
    return f"{plan.prefix}-{capacity_type}-{index}"


def build_node(plan: PoolPlan, capacity_type: str, index: int) -> dict:
    """One kwok-managed fake GPU node of the given pool."""
    preset = PRESETS[plan.preset]
    name = node_name(plan, capacity_type, index)
    cidr = pod_cidr(plan, capacity_type, index)
    taints = [t.as_dict() for t in preset.taints.get(capacity_type, ())]
    if plan.gpu_taint:
        taints.append(Taint("nvidia.com/gpu", "present").as_dict())
    resources = {"cpu": "64", "memory": "512Gi", "pods": "110",
                 "nvidia.com/gpu": str(plan.gpus_per_node)}
    labels = {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "type": "kwok", POOL_LABEL: capacity_type,
        "nvidia.com/gpu.product": plan.gpu_product, "nvidia.com/gpu.count": str(plan.gpus_per_node),
        **preset.labels.get(capacity_type, {}),
    }
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr],
                 "taints": taints},
        "status": {"capacity": resources, "allocatable": dict(resources)},
    }


def pod_cidr(plan: PoolPlan, capacity_type: str, index: int) -> str:
    return f"127.{plan.octet + POOL_OFFSET[capacity_type]}.{index}.0/24"


def system_node(plan: PoolPlan, index: int) -> dict:
    """A kwok-managed CPU node without taints or GPUs, as clusters keep for system pods."""
    name, cidr = f"system-{index}", f"127.{plan.octet + len(CAPACITY_TYPES)}.{index}.0/24"
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok", POOL_LABEL: "system"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"capacity": resources, "allocatable": dict(resources)}}


def pool_nodes(plan: PoolPlan) -> list[dict]:
    """All nodes of the plan, on-demand first, system nodes last."""
    counts = {"on-demand": plan.on_demand_nodes, "spot": plan.spot_nodes}
    gpu = [build_node(plan, ct, i) for ct in CAPACITY_TYPES for i in range(counts[ct])]
    return gpu + [system_node(plan, i) for i in range(plan.system_nodes)]
