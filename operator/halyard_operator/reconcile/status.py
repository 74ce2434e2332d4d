"""Status of an LLMDeployment from its children and problems (pure)."""
from __future__ import annotations

from typing import Mapping

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.meta import Owner, endpoint, pool_name, selector_string
from halyard_operator.builders.placement import PoolCounts
from halyard_operator.builders.pools import ON_DEMAND, SPOT
from halyard_operator.policy import CapacityDecision
from halyard_operator.policy.conditions import SLO_AT_RISK
from halyard_operator.reconcile.conditions import Cond
from halyard_operator.reconcile.validate import Problem


def pool_status(children: Mapping[tuple[str, str], dict], owner: Owner, pool: str) -> dict:
    live = children.get(("Deployment", pool_name(owner, pool))) or {}
    return live.get("status") or {}


def replica_counts(children: Mapping[tuple[str, str], dict], owner: Owner) -> dict:
    """Counts read from the children Deployments' status."""
    od, spot = pool_status(children, owner, ON_DEMAND), pool_status(children, owner, SPOT)
    return {
        "replicas": od.get("replicas", 0) + spot.get("replicas", 0),
        "readyReplicas": od.get("readyReplicas", 0) + spot.get("readyReplicas", 0),
        "onDemandReplicas": od.get("replicas", 0),
        "spotReplicas": spot.get("replicas", 0),
    }


def current_conditions(spec: LLMDeploymentSpec | None, counts: PoolCounts | None, target: int,
                       children: Mapping[tuple[str, str], dict], owner: Owner,
                       problems: list[Problem], decision: CapacityDecision | None = None) -> list[Cond]:
    ready = replica_counts(children, owner)["readyReplicas"]
    conds = [_degraded(problems), _ready(ready, target), _progressing(children, owner, counts)]
    scaled = spec is not None and spec.scaling is not None
    if decision is None:
        return conds
    for cond in decision.conditions:
        if cond.type != SLO_AT_RISK or scaled:
            conds.append(Cond(cond.type, "True" if cond.status else "False", cond.reason, cond.message))
    if scaled:
        conds.append(_scaling_active(decision))
    return conds


def _scaling_active(decision: CapacityDecision) -> Cond:
    """HPA's meaning: True while decisions are made from live metrics."""
    if not decision.metrics_live:
        return Cond("ScalingActive", "False", "MetricsUnavailable",
                    f"{decision.reason}; waiting for Ready replicas to report metrics")
    return Cond("ScalingActive", "True", "ScalingFromMetrics", decision.reason)


def _degraded(problems: list[Problem]) -> Cond:
    if not problems:
        return Cond("Degraded", "False", "AsExpected", "")
    return Cond("Degraded", "True", problems[0].reason, "; ".join(p.message for p in problems))


def _ready(ready: int, target: int) -> Cond:
    if target == 0:
        return Cond("Ready", "False", "ScaledToZero", "no replicas are requested")
    if ready >= target:
        return Cond("Ready", "True", "ReplicasReady", f"{ready}/{target} replicas ready")
    return Cond("Ready", "False", "ReplicasNotReady", f"{ready}/{target} replicas ready")


def _progressing(children: Mapping[tuple[str, str], dict], owner: Owner,
                 counts: PoolCounts | None) -> Cond:
    if counts is None:
        return Cond("Progressing", "False", "Blocked", "changes are not applied until Degraded is resolved")
    pending = []
    for pool, want in ((ON_DEMAND, counts.on_demand), (SPOT, counts.spot)):
        live = children.get(("Deployment", pool_name(owner, pool)))
        if live is None:
            continue
        st, gen = live.get("status") or {}, (live.get("metadata") or {}).get("generation")
        settled = (st.get("updatedReplicas", 0) == want and st.get("readyReplicas", 0) == want
                   and st.get("replicas", 0) == want
                   and (gen is None or st.get("observedGeneration") == gen))
        if not settled:
            pending.append(f"{pool_name(owner, pool)} {st.get('readyReplicas', 0)}/{want} ready")
    if pending:
        return Cond("Progressing", "True", "RollingOut", "; ".join(pending))
    return Cond("Progressing", "False", "Settled", "every pool runs its desired replicas")


def status_fields(owner: Owner, generation: int | None, children: Mapping[tuple[str, str], dict],
                  spec: LLMDeploymentSpec | None = None, decision: CapacityDecision | None = None) -> dict:
    """Everything in status except conditions."""
    fields = {"observedGeneration": generation, **replica_counts(children, owner),
              "selector": selector_string(owner), "endpoint": endpoint(owner)}
    if decision is not None:
        fields["desiredReplicas"] = decision.desired
        if spec is not None and spec.scaling is not None and decision.metrics_status is not None:
            fields["metrics"] = decision.metrics_status
    return fields
