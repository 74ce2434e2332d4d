"""Policy inputs: frozen, validated views of `spec.scaling`, `spec.capacity` and `spec.tier`.

Each dataclass maps 1:1 from the `LLMDeployment` spec (camelCase keys there,
snake_case here, durations as seconds). `params_from_spec` parses a raw spec
mapping; a bad value raises `SpecError` naming the field and the fix.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

TIERS = ("critical", "standard", "batch")
PROVIDERS = ("auto", "karpenter", "eks", "gke", "aks", "custom")


class SpecError(ValueError):
    """A spec value the policies cannot use; `field` is the spec path."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"{field_path}: {message}")
        self.field = field_path


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any, field_path: str) -> float:
    """'500ms' | '2m' | 30 | 0.5 -> seconds (float >= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise SpecError(field_path, f"{value!r} is not a duration; write e.g. '500ms', '30s', '5m'")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < 0 or math.isnan(seconds):
        raise SpecError(field_path, "must be a non-negative duration")
    return seconds


@dataclass(frozen=True)
class SLO:
    """Latency objectives in seconds; None means 'no objective on this metric'."""

    ttft_p95_s: float | None = None
    itl_p95_s: float | None = None


@dataclass(frozen=True)
class Behavior:
    """Scale rates. Invariant: windows >= 0; max steps >= 1 replica.

    Scale-up acts on the max recommendation over `scale_up_window_s` (0 = now),
    scale-down on the max recommendation over `scale_down_window_s` (like HPA).
    """

    scale_up_window_s: float = 0.0
    scale_down_window_s: float = 300.0
    scale_up_max_step: int = 1000  # replicas added per decision at most (and never less than double)
    scale_down_max_step: int = 1  # replicas removed per decision at most
    scale_down_cooldown_s: float = 60.0  # no removal this soon after any scale change


@dataclass(frozen=True)
class ScalingParams:
    """`spec.scaling`. Invariant: 0 <= min_replicas <= max_replicas."""

    min_replicas: int = 1
    max_replicas: int = 1
    slo: SLO = field(default_factory=SLO)
    target_queue_per_replica: float = 4.0
    target_kv_usage: float = 0.9  # KV cache usage (0..1) above which a replica counts as full
    target_utilization: float = 0.8  # share of learned per-replica capacity to plan for
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

    `overprovision` is extra spot replicas: `overprovision_replicas` plus
    `ceil(overprovision_fraction * spot_target)`.
    """

    enabled: bool = False
    on_demand_floor: int = 0
    overprovision_replicas: int = 0
    overprovision_fraction: float = 0.0
    fallback: bool = True
    pending_timeout_s: float = 300.0

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


def _int(spec: Mapping, key: str, path: str, default: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}", f"must be an integer, got {value!r}")
    return value


def parse_overprovision(value: Any, path: str) -> tuple[int, float]:
    """1 -> (1, 0.0); '25%' -> (0, 0.25)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, 0.0
    text = str(value).strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            pct = -1.0
        if pct >= 0:
            return 0, pct / 100.0
    raise SpecError(path, f"{value!r} is not a replica count or percentage; write e.g. 1 or '25%'")


def _slo(raw: Mapping, path: str) -> SLO:
    ttft = raw.get("ttftP95")
    itl = raw.get("itlP95")
    return SLO(
        ttft_p95_s=None if ttft is None else parse_duration(ttft, f"{path}.ttftP95"),
        itl_p95_s=None if itl is None else parse_duration(itl, f"{path}.itlP95"),
    )


def _behavior(raw: Mapping, path: str) -> Behavior:
    up = raw.get("scaleUp") or {}
    down = raw.get("scaleDown") or {}
    base = Behavior()
    return Behavior(
        scale_up_window_s=parse_duration(up.get("stabilizationWindow", base.scale_up_window_s), f"{path}.scaleUp.stabilizationWindow"),
        scale_down_window_s=parse_duration(down.get("stabilizationWindow", base.scale_down_window_s), f"{path}.scaleDown.stabilizationWindow"),
        scale_up_max_step=max(1, _int(up, "maxStep", f"{path}.scaleUp", base.scale_up_max_step)),
        scale_down_max_step=max(1, _int(down, "maxStep", f"{path}.scaleDown", base.scale_down_max_step)),
        scale_down_cooldown_s=parse_duration(down.get("cooldown", base.scale_down_cooldown_s), f"{path}.scaleDown.cooldown"),
    )


def scaling_from_spec(spec: Mapping) -> tuple[ScalingParams, int | None]:
    """`spec.scaling` (or fixed `spec.replicas`) -> (ScalingParams, fixed_replicas)."""
    raw = spec.get("scaling")
    if raw is None:
        fixed = _int(spec, "replicas", "spec", 1)
        return ScalingParams(min_replicas=fixed, max_replicas=fixed), fixed
    path = "spec.scaling"
    predictive = raw.get("predictive", False)
    if isinstance(predictive, Mapping):
        lead = parse_duration(predictive.get("leadTime", 300), f"{path}.predictive.leadTime")
        predictive_on = bool(predictive.get("enabled", True))
    else:
        lead, predictive_on = 300.0, bool(predictive)
    return ScalingParams(
        min_replicas=_int(raw, "minReplicas", path, 1),
        max_replicas=_int(raw, "maxReplicas", path, max(1, raw.get("minReplicas", 1))),
        slo=_slo(raw.get("slo") or {}, f"{path}.slo"),
        target_queue_per_replica=float(raw.get("targetQueuePerReplica", 4.0)),
        behavior=_behavior(raw.get("behavior") or {}, f"{path}.behavior"),
        predictive=predictive_on,
        lead_time_s=lead,
    ), None


def capacity_from_spec(spec: Mapping) -> CapacityParams:
    raw = spec.get("capacity") or {}
    spot = raw.get("spot") or {}
    path = "spec.capacity.spot"
    fixed, frac = parse_overprovision(spot.get("overprovision", 0), f"{path}.overprovision")
    provider = raw.get("provider", "auto")
    if isinstance(provider, Mapping):
        provider = provider.get("name", "custom")
    if provider not in PROVIDERS:
        raise SpecError("spec.capacity.provider", f"{provider!r} is not one of {', '.join(PROVIDERS)}")
    return CapacityParams(
        spot=SpotParams(
            enabled=bool(spot.get("enabled", False)),
            on_demand_floor=_int(spot, "onDemandFloor", path, 0),
            overprovision_replicas=fixed,
            overprovision_fraction=frac,
            fallback=bool(spot.get("fallback", True)),
            pending_timeout_s=parse_duration(spot.get("pendingTimeout", 300), f"{path}.pendingTimeout"),
        ),
        provider=provider,
    )


def params_from_spec(name: str, spec: Mapping) -> DeploymentParams:
    """Raw LLMDeployment `spec` mapping -> DeploymentParams (raises SpecError)."""
    scaling, fixed = scaling_from_spec(spec)
    tier = spec.get("tier", "standard")
    if tier not in TIERS:
        raise SpecError("spec.tier", f"{tier!r} is not one of {', '.join(TIERS)}")
    gpus = _int(spec.get("resources") or {}, "gpus", "spec.resources", 1)
    if gpus < 1:
        raise SpecError("spec.resources.gpus", "must be >= 1")
    return DeploymentParams(
        name=name, scaling=scaling, capacity=capacity_from_spec(spec), tier=tier,
        gpus_per_replica=gpus, fixed_replicas=fixed,
    )
