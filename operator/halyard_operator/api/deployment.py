"""The top-level `LLMDeployment.spec`."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api.capacity import CapacitySpec
from halyard_operator.api.router import RouterSpec
from halyard_operator.api.schema import Rule, spec_field
from halyard_operator.api.spec import (
    MAX_REPLICAS, TIERS, EngineSpec, ModelSpec, ResourcesSpec, ScalingSpec,
)
from halyard_operator.api.template import SecretKeyRef, TemplateSpec

_SPOT_ON = "has(self.capacity) && has(self.capacity.spot) && self.capacity.spot.enabled"


def _floor_fits(spec: "LLMDeploymentSpec") -> bool:
    if not spec.capacity.spot.enabled:
        return True
    floor = spec.capacity.spot.on_demand_floor
    if spec.scaling is not None:
        return floor <= spec.scaling.max_replicas
    return spec.replicas is None or floor <= spec.replicas


@dataclass(frozen=True, kw_only=True)
class LLMDeploymentSpec:
    """Desired state of one LLM inference deployment.

    Invariants (enforced by CEL in the CRD and by `parse_spec`): exactly one of
    `replicas` and `scaling` is set; with spot enabled, `onDemandFloor` fits
    inside `replicas` / `scaling.maxReplicas`.
    """

    RULES = (
        Rule(cel="has(self.replicas) != has(self.scaling)",
             message="set exactly one of spec.replicas (fixed size) or spec.scaling (autoscaling)",
             path="", check=lambda s: (s.replicas is None) != (s.scaling is None)),
        Rule(cel=f"!({_SPOT_ON}) || (has(self.scaling) ? self.capacity.spot.onDemandFloor <= "
                 "self.scaling.maxReplicas : (!has(self.replicas) || "
                 "self.capacity.spot.onDemandFloor <= self.replicas))",
             message="spec.capacity.spot.onDemandFloor must be <= spec.scaling.maxReplicas "
                     "(or <= spec.replicas for a fixed size); lower the floor or raise the size",
             path="capacity.spot.onDemandFloor", check=_floor_fits),
    )

    model: ModelSpec = spec_field("The model to serve.", required=True)
    engine: EngineSpec = spec_field("Inference engine settings.", default_factory=EngineSpec)
    resources: ResourcesSpec = spec_field("Compute per replica.", default_factory=ResourcesSpec)
    replicas: int | None = spec_field(
        "Fixed number of replicas (exclusive with scaling). The scale subresource "
        "(kubectl scale) writes this field.", minimum=0, maximum=MAX_REPLICAS)
    scaling: ScalingSpec | None = spec_field(
        "SLO-driven autoscaling (exclusive with replicas); the operator then owns replica counts.")
    capacity: CapacitySpec = spec_field("Spot/on-demand capacity pools.", default_factory=CapacitySpec)
    tier: str = spec_field(
        "Priority tier: critical, standard or batch. Sets the pods' PriorityClass "
        "(halyard-<tier>), whether they may be preempted and their shedding order.",
        default="standard", enum=TIERS)
    template: TemplateSpec = spec_field("Pod overrides for the worker pods.",
                                        default_factory=TemplateSpec)
    router: RouterSpec = spec_field("The router in front of the workers (Service <name>).",
                                    default_factory=RouterSpec)
    api_key_secret_ref: SecretKeyRef | None = spec_field(
        "Secret key holding the API key clients must send (Authorization: Bearer KEY); the "
        "workers read it from the environment (HALYARD_API_KEY), never from their command line. "
        "Unset: no API key.")
