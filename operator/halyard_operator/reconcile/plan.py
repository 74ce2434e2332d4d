"""Plan: desired children, what to write and delete, and problems (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.children import desired_children
from halyard_operator.builders.meta import Owner
from halyard_operator.builders.placement import PoolCounts, place, serving_target
from halyard_operator.builders.pools import Pools, resolve_pools
from halyard_operator.config import OperatorConfig
from halyard_operator.kube.apply import needs_write, with_hash
from halyard_operator.observe import Observed, node_labels
from halyard_operator.reconcile.failures import failure_problems
from halyard_operator.reconcile.validate import Problem, placement_problems, spec_problems


@dataclass(frozen=True)
class Plan:
    """What one reconcile will do. Invariant: a plan with a blocking problem
    has no writes and no deletes (`counts` is then None)."""

    writes: tuple[dict, ...] = ()  # desired objects (with hash) that differ from live
    deletes: tuple[tuple[str, str], ...] = ()  # (kind, name) of children no longer wanted
    problems: tuple[Problem, ...] = ()
    counts: PoolCounts | None = None
    target: int = 0
    recheck_after: float | None = None  # seconds: reconcile again then, even without an event


def observed_pools(spec: LLMDeploymentSpec, config: OperatorConfig, observed: Observed) -> Pools | None:
    """The pools as resolved from the nodes; None when provider auto cannot see any node."""
    labels = node_labels(observed)
    if spec.capacity.provider != "auto" or labels is not None:
        return resolve_pools(spec, config, labels or ())
    return None


def make_plan(owner: Owner, spec: LLMDeploymentSpec | None, problems: list[Problem],
              observed: Observed, config: OperatorConfig, sized: tuple[int, PoolCounts] | None = None) -> Plan:
    """`sized`: (serving target, pool counts) from the scaling policies; None places
    the spec's own size statically."""
    if spec is None:
        return Plan(problems=tuple(problems))
    target = sized[0] if sized else serving_target(spec)
    pools = observed_pools(spec, config, observed)
    problems = problems + spec_problems(spec, config, pools, observed)
    if pools is None:
        pools = resolve_pools(spec, config, ())
    if any(p.blocking for p in problems):
        return Plan(problems=tuple(problems), target=target)
    # observed failures (worker pods, scheduler) first: they are facts, the placement check a forecast
    problems += failure_problems(observed.pods, owner.namespace) + placement_problems(spec, pools, observed)
    counts = sized[1] if sized else place(spec, target, spot_allowed=pools.spot is not None)
    desired = [with_hash(obj) for obj in desired_children(owner, spec, pools, counts, config)]
    wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in desired}
    writes = tuple(obj for obj in desired
                   if needs_write(obj, observed.children.get((obj["kind"], obj["metadata"]["name"]))))
    deletes = tuple(key for key, live in observed.children.items()
                    if key not in wanted and _owned_by(live, owner))
    return Plan(writes=writes, deletes=deletes, problems=tuple(problems), counts=counts, target=target)


def _owned_by(live: dict, owner: Owner) -> bool:
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs)
