"""`LLMDeployment.status`: written by the operator only. Conditions, never a phase."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api.schema import spec_field

CONDITION_STATUSES = ("True", "False", "Unknown")


def _frozen(cls):
    return dataclass(frozen=True, kw_only=True)(cls)


@_frozen
class Condition:
    """One observed condition (metav1.Condition shape).

    The operator's only condition type: policies and the status computation
    make it without timestamps (`Condition.of`); `merge_conditions` fills in
    `last_transition_time` and `observed_generation` when it is written.
    """

    type: str = spec_field("Condition type, e.g. Ready, Progressing, Degraded.", required=True,
                           max_length=316)
    status: str = spec_field("True, False or Unknown.", required=True, enum=CONDITION_STATUSES)
    reason: str = spec_field("CamelCase reason for the last transition.", required=True,
                             max_length=1024)
    message: str = spec_field("Human-readable details, including how to fix a problem.",
                              default="", max_length=32768)
    last_transition_time: str | None = spec_field("When the status last changed (RFC 3339).",
                                                  required=True, unset=None)
    observed_generation: int | None = spec_field("metadata.generation this condition reflects.",
                                                 minimum=0)

    @classmethod
    def of(cls, type_: str, status: bool, reason: str, message: str = "") -> "Condition":
        """A condition as computed now: `status` True or False, no timestamps yet."""
        return cls(type=type_, status="True" if status else "False", reason=reason, message=message)

    def to_status(self) -> dict:
        """The `status.conditions[]` entry (timestamps only once set)."""
        out = {"type": self.type, "status": self.status, "reason": self.reason, "message": self.message}
        if self.last_transition_time is not None:
            out["lastTransitionTime"] = self.last_transition_time
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        return out


@_frozen
class StatusMetrics:
    """Live serving metrics aggregated over ready replicas."""

    ttft_p95: str | None = spec_field("Observed p95 time to first token, e.g. 412ms.")
    itl_p95: str | None = spec_field("Observed p95 inter-token latency, e.g. 38ms.")
    queue: float | None = spec_field("Requests waiting: in the replicas' queues plus the routers' "
                                      "admission queues.")
    kv_cache_usage: float | None = spec_field("Mean KV cache usage across replicas, 0..1.")
    request_rate: float | None = spec_field("Requests per second across replicas.")
    stale_pods: int | None = spec_field("Ready replicas whose last scrape failed (their last good "
                                        "figures are used).", minimum=0)


@_frozen
class StatusCost:
    """Live cost per hour at the operator config's gpuPrices (per GPU-hour of resources.gpuProduct)."""

    currency: str | None = spec_field("Currency of the prices (the operator config's currency).")
    gpu_product: str | None = spec_field("GPU product priced (resources.gpuProduct).")
    gpu_hours_per_hour: int | None = spec_field("GPUs held now, on-demand and spot: GPU-hours per hour.",
                                                minimum=0)
    on_demand_gpus: int | None = spec_field("GPUs of the on-demand pool's pods.", json_name="onDemandGPUs", minimum=0)
    spot_gpus: int | None = spec_field("GPUs of the spot pool's pods.", json_name="spotGPUs", minimum=0)
    per_hour: float | None = spec_field("Price per hour of every replica now (on-demand + spot).")
    on_demand_per_hour: float | None = spec_field("Price per hour of the on-demand replicas.")
    spot_per_hour: float | None = spec_field("Price per hour of the spot replicas.")
    all_on_demand_per_hour: float | None = spec_field("Price per hour of the same replicas all on on-demand "
                                                      "capacity.")
    saving_per_hour: float | None = spec_field("allOnDemandPerHour - perHour: what spot saves per hour.")
    message: str | None = spec_field("Why no price applies, when none does.")


@_frozen
class LLMDeploymentStatus:
    """Observed state of an LLMDeployment."""

    observed_generation: int | None = spec_field("metadata.generation the status reflects.")
    replicas: int | None = spec_field("Worker pods that exist, all pools.")
    ready_replicas: int | None = spec_field("Worker pods ready to serve, all pools.")
    on_demand_replicas: int | None = spec_field("Worker pods on on-demand capacity.")
    spot_replicas: int | None = spec_field("Worker pods on spot capacity.")
    desired_replicas: int | None = spec_field("Serving size the operator decided (autoscaler, "
                                              "capped by the tier's GPU grant).", minimum=0)
    selector: str | None = spec_field("Label selector of the worker pods (scale subresource).")
    endpoint: str | None = spec_field("OpenAI-compatible base URL inside the cluster.")
    metrics: StatusMetrics | None = spec_field("Live serving metrics.")
    cost: StatusCost | None = spec_field("Live cost per hour and what spot saves.")
    reason: str | None = spec_field("Reason of the first failing condition (Degraded=True, Ready=False, "
                                    "CapacityConstrained=True, SLOAtRisk=True, SpotFallbackActive=True); "
                                    "empty when nothing fails.")
    conditions: tuple[Condition, ...] = spec_field(
        "Ready, Progressing, Degraded, ScalingActive, CapacityConstrained, "
        "SpotFallbackActive and SLOAtRisk.", default_factory=tuple)
