"""`spec.capacity`: spot and on-demand pools, and the node provider preset."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from halyard_operator.api.schema import DURATION_PATTERN, Rule, spec_field

PROVIDERS = ("auto", "karpenter", "eks", "gke", "aks", "custom")
FALLBACKS = ("onDemand", "none")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _frozen(cls):
    return dataclass(frozen=True, kw_only=True)(cls)


@_frozen
class Toleration:
    """A Kubernetes pod toleration (core/v1 Toleration)."""

    key: str | None = spec_field("Taint key to tolerate; empty with operator Exists tolerates all.",
                                 max_length=316)
    operator: str = spec_field("Exists or Equal.", default="Equal", enum=TOLERATION_OPERATORS)
    value: str | None = spec_field("Taint value (operator Equal).", max_length=63)
    effect: str | None = spec_field("Taint effect to tolerate; empty tolerates all effects.",
                                    enum=TAINT_EFFECTS)
    toleration_seconds: int | None = spec_field(
        "For NoExecute: seconds the pod stays bound after the taint appears.", minimum=0)


@_frozen
class PoolPlacement:
    """Explicit node placement of one capacity pool (provider: custom)."""

    node_selector: Mapping[str, str] = spec_field(
        "Node labels the pool's pods require, e.g. {node-pool: gpu-spot}.",
        default_factory=dict, max_items=32)
    tolerations: tuple[Toleration, ...] = spec_field(
        "Tolerations for the taints of the pool's nodes.", default_factory=tuple, max_items=32)


@_frozen
class CustomPools:
    """Node placement per pool when capacity.provider is custom."""

    on_demand: PoolPlacement | None = spec_field("Where on-demand replicas run.")
    spot: PoolPlacement | None = spec_field("Where spot replicas run (needed when spot is enabled).")


@_frozen
class SpotSpec:
    """Use spot (preemptible) GPUs for part of the replicas."""

    enabled: bool = spec_field("Place replicas above onDemandFloor on spot capacity.", default=False)
    on_demand_floor: int = spec_field(
        "Replicas always kept on on-demand capacity, so spot reclaims never take the "
        "deployment to zero.", default=1, minimum=0)
    overprovision: int = spec_field(
        "Extra spot replicas run beyond the target to absorb spot interruptions.",
        default=0, minimum=0, maximum=100)
    fallback: str = spec_field(
        "When spot capacity is unavailable: onDemand places the replicas on on-demand "
        "capacity instead; none waits for spot.", default="onDemand", enum=FALLBACKS)
    pending_timeout: float = spec_field(
        "How long a spot replica may stay Pending before spot counts as unavailable.",
        default="2m", kind="duration", pattern=DURATION_PATTERN, max_length=32)


def _custom_has(capacity: "CapacitySpec", pool: str) -> bool:
    placement = getattr(capacity.custom, pool, None) if capacity.custom else None
    return bool(placement and placement.node_selector)


@_frozen
class CapacitySpec:
    """Which capacity pools replicas run on."""

    RULES = (
        Rule(cel="self.provider != 'custom' || (has(self.custom) && has(self.custom.onDemand) "
                 "&& has(self.custom.onDemand.nodeSelector) && size(self.custom.onDemand.nodeSelector) > 0)",
             message="capacity.provider custom needs explicit on-demand placement: "
                     "set spec.capacity.custom.onDemand.nodeSelector",
             path="custom.onDemand.nodeSelector",
             check=lambda c: c.provider != "custom" or _custom_has(c, "on_demand")),
        Rule(cel="self.provider != 'custom' || !self.spot.enabled || (has(self.custom) "
                 "&& has(self.custom.spot) && has(self.custom.spot.nodeSelector) "
                 "&& size(self.custom.spot.nodeSelector) > 0)",
             message="capacity.provider custom with spot enabled needs explicit spot placement: "
                     "set spec.capacity.custom.spot.nodeSelector",
             path="custom.spot.nodeSelector",
             check=lambda c: c.provider != "custom" or not c.spot.enabled or _custom_has(c, "spot")),
        Rule(cel="self.provider == 'custom' || !has(self.custom)",
             message="spec.capacity.custom is only used with provider: custom; "
                     "remove it or set spec.capacity.provider: custom",
             path="custom", check=lambda c: c.provider == "custom" or c.custom is None),
    )

    spot: SpotSpec = spec_field("Spot capacity settings.", default_factory=SpotSpec)
    provider: str = spec_field(
        "Node provisioner whose capacity-type labels select the pools: auto (detected from "
        "node labels), karpenter (karpenter.sh/capacity-type), eks "
        "(eks.amazonaws.com/capacityType), gke (cloud.google.com/gke-spot), aks "
        "(kubernetes.azure.com/scalesetpriority) or custom (spec.capacity.custom).",
        default="auto", enum=PROVIDERS)
    custom: CustomPools | None = spec_field("Explicit pool placement for provider: custom.")
