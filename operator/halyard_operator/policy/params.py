"""Policy inputs: frozen views of `spec.scaling`, `spec.capacity` and `spec.tier`.

Each dataclass maps 1:1 from the parsed `LLMDeploymentSpec` (the API package
validates; here unset fields get the policies' defaults). Durations are seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from halyard_operator.api import LLMDeploymentSpec, ScalingSpec

UNLIMITED = 1_000_000  # "no max step"


class SpecError(ValueError):
    """Policy inputs that contradict each other; `field` is the spec path."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"{field_path}: {message}")
        self.field = field_path


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

    scale_up_window_s: float = 0.0
    scale_down_window_s: float = 300.0
    scale_up_max_step: int = UNLIMITED  # replicas added per decision at most
    scale_down_max_step: int = UNLIMITED  # replicas removed per decision at most
    scale_down_cooldown_s: float = 60.0  # no removal this soon after any scale change


@dataclass(frozen=True)
class ScalingParams:
    """`spec.scaling`. Invariant: 0 <= min_replicas <= max_replicas."""

    min_replicas: int = 1
    max_replicas: int = 1
    slo: SLO = field(default_factory=SLO)
    target_queue_per_replica: float = 4.0
    target_kv_usage: float = 0.9  # KV cache usage (0..1) above which a replica counts as full
    target_utilization: float = 0.92  # share of learned per-replica capacity to plan for
    behavior: Behavior = field(default_factory=Behavior)
    predictive: bool = False
    lead_time_s: float = 300.0  # expected node provisioning + model warm-up (forecast horizon)

    def __post_init__(self):
        if self.min_replicas < 0:
            raise SpecError("spec.scaling.minReplicas", "must be >= 0")
        if self.max_replicas < self.min_replicas:
            raise SpecError("spec.scaling.maxReplicas", "must be >= spec.scaling.minReplicas")
        if self.target_queue_per_replica <= 0:
            raise SpecError("spec.scaling.targetQueuePerReplica", "must be > 0")


@dataclass(frozen=True)
class SpotParams:
    """`spec.capacity.spot`. Invariant: on_demand_floor >= 0, overprovision >= 0.

    `fallback` is True for `fallback: onDemand`, False for `none`. Extra spot
    replicas: `overprovision_replicas` plus `ceil(overprovision_fraction * spot_target)`
    (the fraction is a simulator/operator-config knob, not a spec field).
    """

    enabled: bool = False
    on_demand_floor: int = 1
    overprovision_replicas: int = 0
    overprovision_fraction: float = 0.0
    fallback: bool = True
    pending_timeout_s: float = 120.0

    def extra_spot(self, spot_target: int) -> int:
        return self.overprovision_replicas + math.ceil(self.overprovision_fraction * spot_target)


@dataclass(frozen=True)
class CapacityParams:
    """`spec.capacity`."""

    spot: SpotParams = field(default_factory=SpotParams)
    provider: str = "auto"


@dataclass(frozen=True)
class DeploymentParams:
    """Everything the policies read from one LLMDeployment spec.

    `fixed_replicas` is set when the spec uses `replicas` instead of `scaling`;
    then `scaling` has min == max == fixed_replicas.
    """

    name: str
    scaling: ScalingParams
    capacity: CapacityParams
    tier: str = "standard"
    gpus_per_replica: int = 1
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
        target_queue_per_replica=queue if queue else ScalingParams.target_queue_per_replica,
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
