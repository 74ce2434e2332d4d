"""The operator's own Prometheus metrics (`halyard:` names, served on
/metrics by halyard_operator.endpoint).

Operator-wide: reconciles by result and their duration, errors by exception
type, scaling decisions by direction and cause, spot fallbacks, drains and
leadership. Per LLMDeployment (labels namespace, name): replicas wanted by
the autoscaler and granted by the tier arbiter, the scaling conditions as
0/1 gauges, and the live cost (policy/cost.py). One registry per instance,
no process-global state; `forget()` drops a deleted object's series.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from halyard_operator.builders.meta import Owner
from halyard_operator.names import CAPACITY_CONSTRAINED, SLO_AT_RISK, SPOT_FALLBACK_ACTIVE
from halyard_operator.policy.cost import LiveCost

WATCHED_CONDITIONS = (SLO_AT_RISK, SPOT_FALLBACK_ACTIVE, CAPACITY_CONSTRAINED)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DEPLOYMENT = ("namespace", "name")


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
        self.wanted = Gauge("halyard:deployment_replicas_wanted", "Serving size the autoscaler wants.",
                            DEPLOYMENT, registry=r)
        self.granted = Gauge("halyard:deployment_replicas_granted", "Serving size after the tier arbiter's "
                             "grant (what runs).", DEPLOYMENT, registry=r)
        self.condition = Gauge("halyard:deployment_condition", "1 while the condition is True "
                               "(SLOAtRisk, SpotFallbackActive, CapacityConstrained).", [*DEPLOYMENT, "type"],
                               registry=r)
        self.gpus = Gauge("halyard:deployment_gpus", "GPUs held by the worker pods, by capacity (on_demand, "
                          "spot): GPU-hours per hour.", [*DEPLOYMENT, "capacity"], registry=r)
        self.cost = Gauge("halyard:deployment_cost_per_hour", "Price per hour of the worker pods by capacity, "
                          "at the operator config's gpuPrices.", [*DEPLOYMENT, "capacity"], registry=r)
        self.all_on_demand = Gauge("halyard:deployment_all_on_demand_cost_per_hour", "Price per hour of the "
                                   "same replicas all on on-demand capacity.", DEPLOYMENT, registry=r)
        self.saving = Gauge("halyard:deployment_spot_saving_per_hour", "all_on_demand_cost_per_hour minus "
                            "cost_per_hour.", DEPLOYMENT, registry=r)
        self.replicas = Gauge("halyard:deployment_replicas", "Worker pods by pool (ondemand, spot).",
                              [*DEPLOYMENT, "pool"], registry=r)
        self.slo = Gauge("halyard:deployment_slo_seconds", "The spec's latency objectives (objective: "
                         "ttft_p95, itl_p95), for dashboards and alerts beside the workers' histograms.",
                         [*DEPLOYMENT, "objective"], registry=r)
        self._known: set[tuple[str, str]] = set()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def reconciled(self, seconds: float, error: BaseException | None = None) -> None:
        self.duration.observe(seconds)
        self.reconciles.labels("error" if error else "ok").inc()
        if error is not None:
            self.errors.labels(type(error).__name__).inc()

    def decided(self, owner: Owner, current: int, desired: int, wanted: int) -> None:
        key = (owner.namespace, owner.name)
        self._known.add(key)
        self.wanted.labels(*key).set(wanted)
        self.granted.labels(*key).set(desired)
        if desired != current:
            self.decisions.labels("up" if desired > current else "down",
                                  "arbiter" if desired < wanted else "autoscaler").inc()

    def drained(self, owner: Owner, pods: int) -> None:
        if pods:
            self.drains.labels(owner.namespace, owner.name).inc(pods)

    def conditions(self, owner: Owner, before: dict[str, str], after: dict[str, str]) -> None:
        """`before`/`after`: condition type -> status, as written."""
        key = (owner.namespace, owner.name)
        self._known.add(key)
        for type_ in WATCHED_CONDITIONS:
            self.condition.labels(*key, type_).set(1 if after.get(type_) == "True" else 0)
        if after.get(SPOT_FALLBACK_ACTIVE) == "True" and before.get(SPOT_FALLBACK_ACTIVE) != "True":
            self.fallbacks.labels(*key).inc()

    def described(self, owner: Owner, on_demand: int, spot: int, slo: dict[str, float | None]) -> None:
        """Replica counts by pool and the latency objectives (`slo`: objective -> seconds or None)."""
        key = (owner.namespace, owner.name)
        self._known.add(key)
        self.replicas.labels(*key, "ondemand").set(on_demand)
        self.replicas.labels(*key, "spot").set(spot)
        for objective, seconds in slo.items():
            if seconds is None:
                _remove(self.slo, (*key, objective))
            else:
                self.slo.labels(*key, objective).set(seconds)

    def priced(self, owner: Owner, cost: LiveCost) -> None:
        key = (owner.namespace, owner.name)
        self._known.add(key)
        self.gpus.labels(*key, "on_demand").set(cost.on_demand_gpus)
        self.gpus.labels(*key, "spot").set(cost.spot_gpus)
        if cost.known:
            self.cost.labels(*key, "on_demand").set(cost.on_demand_per_hour)
            self.cost.labels(*key, "spot").set(cost.spot_per_hour)
            self.all_on_demand.labels(*key).set(cost.all_on_demand_per_hour)
            self.saving.labels(*key).set(cost.saving_per_hour)

    def forget(self, owner: Owner) -> None:
        key = (owner.namespace, owner.name)
        self._known.discard(key)
        for metric in (self.wanted, self.granted, self.all_on_demand, self.saving, self.fallbacks, self.drains):
            _remove(metric, key)
        for type_ in WATCHED_CONDITIONS:
            _remove(self.condition, (*key, type_))
        for capacity in ("on_demand", "spot"):
            _remove(self.gpus, (*key, capacity))
            _remove(self.cost, (*key, capacity))
        for pool in ("ondemand", "spot"):
            _remove(self.replicas, (*key, pool))
        for objective in ("ttft_p95", "itl_p95"):
            _remove(self.slo, (*key, objective))


def _remove(metric, labels: tuple[str, ...]) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
