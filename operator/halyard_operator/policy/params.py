"""Policy inputs: frozen views of `spec.scaling`, `spec.capacity` and `spec.tier`.

Each dataclass maps 1:1 from the parsed `LLMDeploymentSpec` (the API package
validates, and its declarations hold the defaults: a field's default here is
the API's own, read from an otherwise empty spec). Only the policies' own
knobs that no spec field sets (KV and utilization targets, the scale-down
cooldown, the overprovision fraction) are defined here. Durations are seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from halyard_operator.api import LLMDeploymentSpec, ScalingSpec, parse_spec
from halyard_operator.api.spec import TARGET_QUEUE_PER_REPLICA

UNLIMITED = 1_000_000  # "no max step"

# The API's defaults: the spec an empty object (plus its required fields) parses to.
_SPEC = parse_spec({"model": {"name": "m", "uri": "hf://o/r"}, "scaling": {"maxReplicas": 1}})
_SCALING, _SPOT = _SPEC.scaling, _SPEC.capacity.spot


@dataclass(frozen=True)
class SLO:
    """Latency objectives in seconds; None means 'no objective on this metric'."""

    ttft_p95_s: float | None = None
    itl_p95_s: float | None = None


@dataclass(frozen=True)
class Behavior:
    """Scale rates. Invariant: windows >= 0; max steps >= 1 replica.

    Like HPA: scale-up acts on the MIN recommendation over `scale_up_window_s`
    (0 = now), scale-down on the MAX recommendation over `scale_down_window_s`.
    """

    scale_up_window_s: float = _SCALING.behavior.scale_up.stabilization_window
    scale_down_window_s: float = _SCALING.behavior.scale_down.stabilization_window
    scale_up_max_step: int = UNLIMITED  # replicas added per decision at most
    scale_down_max_step: int = UNLIMITED  # replicas removed per decision at most
    scale_down_cooldown_s: float = 60.0  # no removal this soon after any scale change


@dataclass(frozen=True)
class ScalingParams:
    """`spec.scaling`. Invariant: 0 <= min_replicas <= max_replicas."""

    min_replicas: int = _SCALING.min_replicas
    max_replicas: int = _SCALING.max_replicas
    slo: SLO = field(default_factory=SLO)
    target_queue_per_replica: float = TARGET_QUEUE_PER_REPLICA
    target_kv_usage: float = 0.9  # KV cache usage (0..1) above which a replica counts as full
    target_utilization: float = 0.92  # share of learned per-replica capacity to plan for
    behavior: Behavior = field(default_factory=Behavior)
    predictive: bool = _SCALING.predictive.enabled
    lead_time_s: float = _SCALING.predictive.lookahead  # node provisioning + model warm-up (forecast horizon)


@dataclass(frozen=True)
class SpotParams:
    """`spec.capacity.spot`. Invariant: on_demand_floor >= 0, overprovision >= 0.

    `fallback` is True for `fallback: onDemand`, False for `none`. Extra spot
    replicas: `overprovision_replicas` plus `ceil(overprovision_fraction * spot_target)`
    (the fraction is a simulator/operator-config knob, not a spec field).
    """

    enabled: bool = _SPOT.enabled
    on_demand_floor: int = _SPOT.on_demand_floor
    overprovision_replicas: int = _SPOT.overprovision
    overprovision_fraction: float = 0.0
    fallback: bool = _SPOT.fallback != "none"
    pending_timeout_s: float = _SPOT.pending_timeout

    def extra_spot(self, spot_target: int) -> int:
        return self.overprovision_replicas + math.ceil(self.overprovision_fraction * spot_target)


@dataclass(frozen=True)
class CapacityParams:
    """`spec.capacity`."""

    spot: SpotParams = field(default_factory=SpotParams)
    provider: str = _SPEC.capacity.provider


@dataclass(frozen=True)
class DeploymentParams:
    """Everything the policies read from one LLMDeployment spec.

    `fixed_replicas` is set when the spec uses `replicas` instead of `scaling`;
    then `scaling` has min == max == fixed_replicas.
    """

    name: str
    scaling: ScalingParams
    capacity: CapacityParams
    tier: str = _SPEC.tier
    gpus_per_replica: int = _SPEC.resources.gpus
    fixed_replicas: int | None = None


def params_from_spec(name: str, spec: LLMDeploymentSpec) -> DeploymentParams:
    """A parsed `LLMDeploymentSpec` (see `halyard_operator.api.parse_spec`) -> policy inputs.

    `name` is how decisions name the deployment, e.g. "team-a/chat-8b".
    """
    if spec.scaling is None:
        fixed = spec.replicas if spec.replicas is not None else 1
        scaling = ScalingParams(min_replicas=fixed, max_replicas=fixed)
    else:
        scaling = _scaling(spec.scaling)
        fixed = None
    spot = spec.capacity.spot
    capacity = CapacityParams(
        spot=SpotParams(
            enabled=spot.enabled,
            on_demand_floor=spot.on_demand_floor,
            overprovision_replicas=spot.overprovision,
            fallback=spot.fallback != "none",
            pending_timeout_s=spot.pending_timeout,
        ),
        provider=spec.capacity.provider,
    )
    return DeploymentParams(name=name, scaling=scaling, capacity=capacity, tier=spec.tier,
                            gpus_per_replica=spec.resources.gpus, fixed_replicas=fixed)


def _scaling(raw: ScalingSpec) -> ScalingParams:
    up, down = raw.behavior.scale_up, raw.behavior.scale_down
    queue = raw.target_queue_per_replica
    return ScalingParams(
        min_replicas=raw.min_replicas,
        max_replicas=raw.max_replicas,
        slo=SLO(ttft_p95_s=raw.slo.ttft_p95, itl_p95_s=raw.slo.itl_p95),
        target_queue_per_replica=queue if queue else TARGET_QUEUE_PER_REPLICA,
        behavior=Behavior(
            scale_up_window_s=up.stabilization_window,
            scale_down_window_s=down.stabilization_window,
            scale_up_max_step=up.max_step or UNLIMITED,
            scale_down_max_step=down.max_step or UNLIMITED,
            # A scale-down window shorter than the default cooldown shortens it too.
            scale_down_cooldown_s=min(Behavior.scale_down_cooldown_s, down.stabilization_window),
        ),
        predictive=raw.predictive.enabled,
        lead_time_s=raw.predictive.lookahead,
    )
