"""Tier arbitration across LLMDeployments: the operator's book of GPU demands.

Each reconcile records its deployment's demand (what the autoscaler wants,
what runs now) and asks for a grant. Deployments compete only with those
asking for the same GPU product (`spec.resources.gpuProduct`; unset means any
GPU node). The budget is the allocatable GPUs of the matching schedulable,
uninterrupted nodes minus the GPUs that pods outside Halyard request there.
The grant comes from the pure `policy.tiers.arbitrate`; the book is memory
only: after a restart it refills as the resume handlers reconcile every object.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from halyard_operator.config import TierConfig
from halyard_operator.kube.client import KubeClient, KubeError
from halyard_operator.names import DEPLOYMENT_LABEL, GPU_PRODUCT_LABEL, GPU_RESOURCE
from halyard_operator.policy.interruption import detect
from halyard_operator.policy.tiers import Demand, Grant, arbitrate
from halyard_operator.signals.nodes import node_info


def _gpus(resources: Mapping | None) -> int:
    try:
        return int(str((resources or {}).get(GPU_RESOURCE, 0)))
    except ValueError:
        return 0


def usable_gpu_nodes(nodes: Iterable[dict], product: str | None) -> dict[str, int]:
    """Node name -> allocatable GPUs, for schedulable nodes without an
    interruption notice that carry `product` (any product when None)."""
    out = {}
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        gpus = _gpus((node.get("status") or {}).get("allocatable"))
        if gpus <= 0 or spec.get("unschedulable") or detect(node_info(node)) is not None:
            continue
        if product and (meta.get("labels") or {}).get(GPU_PRODUCT_LABEL) != product:
            continue
        out[meta.get("name", "")] = gpus
    return out


def foreign_gpus(pods: Iterable[dict], nodes: Iterable[str]) -> int:
    """GPUs requested by live pods outside Halyard bound to `nodes`."""
    names = set(nodes)
    total = 0
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if DEPLOYMENT_LABEL in (meta.get("labels") or {}) or spec.get("nodeName") not in names:
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        total += sum(_gpus((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits"))
                     for c in spec.get("containers") or ())
    return total


@dataclass
class FleetBook:
    """Last known demand of every LLMDeployment (mutable, one per operator process).

    Entries not refreshed within `ttl_s` are dropped (a deployment deleted
    while the operator was down never blocks GPUs).
    """

    ttl_s: float = 120.0
    entries: dict = field(default_factory=dict)  # key -> (product, Demand, seen_at)

    def grant(self, key: str, product: str | None, demand: Demand, budget: int,
              tiers: Mapping[str, TierConfig], now: float | None = None) -> Grant:
        """Record `demand` and arbitrate `budget` GPUs among deployments of the same product."""
        at = time.monotonic() if now is None else now
        self.entries[key] = (product, demand, at)
        for other in [k for k, (_, _, seen) in self.entries.items() if at - seen > self.ttl_s]:
            del self.entries[other]
        group = tuple(d for p, d, _ in self.entries.values() if p == product and d.tier in tiers)
        return arbitrate(group, budget, tiers)[key]

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)


@dataclass
class ClusterPods:
    """Every pod in the cluster, listed at most once per `max_age_s` (the GPU
    budget needs what pods outside Halyard request; one list serves all reconciles)."""

    max_age_s: float = 10.0
    pods: tuple = ()
    listed_at: float | None = None
    allowed: bool = True

    async def get(self, kube: KubeClient) -> tuple[dict, ...]:
        now = time.monotonic()
        if not self.allowed or (self.listed_at is not None and now - self.listed_at < self.max_age_s):
            return self.pods
        try:
            self.pods = tuple(await kube.list("Pod"))
        except KubeError as exc:
            if exc.status not in (401, 403):
                raise
            self.allowed = False  # namespaced RBAC: budget from node allocatable alone
        self.listed_at = now
        return self.pods
