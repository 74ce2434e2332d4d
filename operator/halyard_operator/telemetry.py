"""The operator's own Prometheus metrics (`halyard:` names, served on
/metrics by halyard_operator.endpoint).

Operator-wide: reconciles by result and their duration, errors by exception
type, scaling decisions by direction and cause, spot fallbacks, drains and
leadership. Per LLMDeployment (labels namespace, name): replicas wanted by
the autoscaler and granted by the tier arbiter, the scaling conditions as
0/1 gauges, and the live cost (policy/cost.py), kept compactly
(`series.DeploymentSeries`) and written out when scraped. One registry per
instance, no process-global state; `forget()` drops a deleted object's series.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from halyard_operator.builders.meta import Owner
from halyard_operator.names import CAPACITY_CONSTRAINED, SLO_AT_RISK, SPOT_FALLBACK_ACTIVE
from halyard_operator.policy.cost import LiveCost
from halyard_operator.series import DeploymentSeries, Family

WATCHED_CONDITIONS = (SLO_AT_RISK, SPOT_FALLBACK_ACTIVE, CAPACITY_CONSTRAINED)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DEPLOYMENT = ("namespace", "name")
CAPACITIES, POOLS, OBJECTIVES = ("on_demand", "spot"), ("ondemand", "spot"), ("ttft_p95", "itl_p95")
WANTED, GRANTED = "halyard:deployment_replicas_wanted", "halyard:deployment_replicas_granted"
CONDITION, GPUS, COST = "halyard:deployment_condition", "halyard:deployment_gpus", "halyard:deployment_cost_per_hour"
ALL_ON_DEMAND = "halyard:deployment_all_on_demand_cost_per_hour"
SAVING, REPLICAS = "halyard:deployment_spot_saving_per_hour", "halyard:deployment_replicas"
SLO = "halyard:deployment_slo_seconds"
DEPLOYMENT_FAMILIES = (
    Family(WANTED, "Serving size the autoscaler wants."),
    Family(GRANTED, "Serving size after the tier arbiter's grant (what runs)."),
    Family(CONDITION, "1 while the condition is True (SLOAtRisk, SpotFallbackActive, CapacityConstrained).",
           "type", WATCHED_CONDITIONS),
    Family(GPUS, "GPUs held by the worker pods, by capacity (on_demand, spot): GPU-hours per hour.",
           "capacity", CAPACITIES),
    Family(COST, "Price per hour of the worker pods by capacity, at the operator config's gpuPrices.",
           "capacity", CAPACITIES),
    Family(ALL_ON_DEMAND, "Price per hour of the same replicas all on on-demand capacity."),
    Family(SAVING, "all_on_demand_cost_per_hour minus cost_per_hour."),
    Family(REPLICAS, "Worker pods by pool (ondemand, spot).", "pool", POOLS),
    Family(SLO, "The spec's latency objectives (objective: ttft_p95, itl_p95), for dashboards and alerts "
           "beside the workers' histograms.", "objective", OBJECTIVES),
)


class OperatorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter("halyard:operator_reconciles", "Reconciles of LLMDeployments by result "
                                  "(ok, error).", ["result"], registry=r)
        self.errors = Counter("halyard:operator_reconcile_errors", "Failed reconciles by exception type.",
                              ["error"], registry=r)
        self.duration = Histogram("halyard:operator_reconcile_duration_seconds", "Duration of one reconcile.",
                                  buckets=RECONCILE_BUCKETS, registry=r)
        self.decisions = Counter("halyard:operator_scaling_decisions", "Serving size changes by direction (up, "
                                 "down) and cause (autoscaler, arbiter: the tier arbiter granted less than "
                                 "wanted).", ["direction", "cause"], registry=r)
        self.fallbacks = Counter("halyard:operator_spot_fallbacks", "Times SpotFallbackActive turned True.",
                                 DEPLOYMENT, registry=r)
        self.drains = Counter("halyard:operator_drains", "Worker pods drained (deleted with a grace period) "
                              "because their node is being interrupted.", DEPLOYMENT, registry=r)
        self.leader = Gauge("halyard:operator_leader", "1 while this replica runs the handlers (holds the "
                            "Lease, or runs without leader election).", registry=r)
        self.series = DeploymentSeries(DEPLOYMENT_FAMILIES)
        r.register(self.series)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def reconciled(self, seconds: float, error: BaseException | None = None) -> None:
        self.duration.observe(seconds)
        self.reconciles.labels("error" if error else "ok").inc()
        if error is not None:
            self.errors.labels(type(error).__name__).inc()

    def decided(self, owner: Owner, current: int, desired: int, wanted: int) -> None:
        key = (owner.namespace, owner.name)
        self.series.set(key, WANTED, wanted)
        self.series.set(key, GRANTED, desired)
        if desired != current:
            self.decisions.labels("up" if desired > current else "down",
                                  "arbiter" if desired < wanted else "autoscaler").inc()

    def drained(self, owner: Owner, pods: int) -> None:
        if pods:
            self.drains.labels(owner.namespace, owner.name).inc(pods)

    def conditions(self, owner: Owner, before: dict[str, str], after: dict[str, str]) -> None:
        """`before`/`after`: condition type -> status, as written."""
        key = (owner.namespace, owner.name)
        for type_ in WATCHED_CONDITIONS:
            self.series.set(key, CONDITION, 1 if after.get(type_) == "True" else 0, type_)
        if after.get(SPOT_FALLBACK_ACTIVE) == "True" and before.get(SPOT_FALLBACK_ACTIVE) != "True":
            self.fallbacks.labels(*key).inc()

    def described(self, owner: Owner, on_demand: int, spot: int, slo: dict[str, float | None]) -> None:
        """Replica counts by pool and the latency objectives (`slo`: objective -> seconds or None)."""
        key = (owner.namespace, owner.name)
        self.series.set(key, REPLICAS, on_demand, "ondemand")
        self.series.set(key, REPLICAS, spot, "spot")
        for objective, seconds in slo.items():
            if seconds is None:
                self.series.clear(key, SLO, objective)
            else:
                self.series.set(key, SLO, seconds, objective)

    def priced(self, owner: Owner, cost: LiveCost) -> None:
        key = (owner.namespace, owner.name)
        self.series.set(key, GPUS, cost.on_demand_gpus, "on_demand")
        self.series.set(key, GPUS, cost.spot_gpus, "spot")
        if cost.known:
            self.series.set(key, COST, cost.on_demand_per_hour, "on_demand")
            self.series.set(key, COST, cost.spot_per_hour, "spot")
            self.series.set(key, ALL_ON_DEMAND, cost.all_on_demand_per_hour)
            self.series.set(key, SAVING, cost.saving_per_hour)

    def forget(self, owner: Owner) -> None:
        key = (owner.namespace, owner.name)
        self.series.forget(key)
        for metric in (self.fallbacks, self.drains):
            _remove(metric, key)


def _remove(metric, labels: tuple[str, ...]) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
