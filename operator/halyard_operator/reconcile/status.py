"""Status of an LLMDeployment from its children and problems (pure)."""
from __future__ import annotations

from typing import Mapping

from halyard_operator.api import Condition, LLMDeploymentSpec
from halyard_operator.builders.meta import Owner, endpoint, pool_name, selector_string
from halyard_operator.builders.placement import PoolCounts
from halyard_operator.builders.pools import ON_DEMAND, SPOT
from halyard_operator.config import OperatorConfig
from halyard_operator.policy import CapacityDecision
from halyard_operator.policy.cost import LiveCost, live_cost
from halyard_operator.names import DEGRADED, PROGRESSING, READY, SCALING_ACTIVE, SLO_AT_RISK, Reason
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
                       problems: list[Problem], decision: CapacityDecision | None = None) -> list[Condition]:
    ready = replica_counts(children, owner)["readyReplicas"]
    degraded = _degraded(problems)
    conds = [degraded, _ready(ready, target, degraded), _progressing(children, owner, counts)]
    scaled = spec is not None and spec.scaling is not None
    if decision is None:
        return conds
    conds += [cond for cond in decision.conditions if cond.type != SLO_AT_RISK or scaled]
    if scaled:
        conds.append(_scaling_active(decision))
    return conds


def _scaling_active(decision: CapacityDecision) -> Condition:
    """HPA's meaning: True while decisions are made from live metrics."""
    if not decision.metrics_live:
        return Condition.of(SCALING_ACTIVE, False, Reason.METRICS_UNAVAILABLE,
                    f"{decision.reason}; waiting for Ready replicas to report metrics")
    return Condition.of(SCALING_ACTIVE, True, Reason.SCALING_FROM_METRICS, decision.reason)


def _degraded(problems: list[Problem]) -> Condition:
    if not problems:
        return Condition.of(DEGRADED, False, Reason.AS_EXPECTED,
                            "the spec is valid and no worker pod is failing")
    return Condition.of(DEGRADED, True, problems[0].reason, "; ".join(p.message for p in problems))


def _ready(ready: int, target: int, degraded: Condition) -> Condition:
    if target == 0:
        return Condition.of(READY, False, Reason.SCALED_TO_ZERO, "no replicas are requested")
    if ready >= target:
        return Condition.of(READY, True, Reason.REPLICAS_READY, f"{ready}/{target} replicas ready")
    why = f" ({degraded.reason}: see the Degraded condition)" if degraded.status == "True" else ""
    return Condition.of(READY, False, Reason.REPLICAS_NOT_READY, f"{ready}/{target} replicas ready{why}")


def _progressing(children: Mapping[tuple[str, str], dict], owner: Owner,
                 counts: PoolCounts | None) -> Condition:
    if counts is None:
        return Condition.of(PROGRESSING, False, Reason.BLOCKED, "changes are not applied until Degraded is resolved")
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
        return Condition.of(PROGRESSING, True, Reason.ROLLING_OUT, "; ".join(pending))
    return Condition.of(PROGRESSING, False, Reason.SETTLED, "every pool runs its desired replicas")


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


def current_cost(spec: LLMDeploymentSpec, children: Mapping[tuple[str, str], dict], owner: Owner,
                 config: OperatorConfig) -> LiveCost:
    """The pools' pods now, priced at the config's gpuPrices."""
    counts = replica_counts(children, owner)
    return live_cost(counts["onDemandReplicas"], counts["spotReplicas"], spec.resources.gpus,
                     spec.resources.gpu_product, config.gpu_prices, config.currency)
