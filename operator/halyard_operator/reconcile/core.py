"""reconcile(): observe -> plan -> apply for one LLMDeployment.

Level-triggered and idempotent: every call recomputes the desired state from
the object as it is now, writes only real differences and patches status only
when it changed, so create/update/resume handlers and the periodic timer all
call the same function.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from halyard_operator.api import InvalidSpec, LLMDeploymentSpec, parse_spec
from halyard_operator.builders.meta import Owner
from halyard_operator.config import OperatorConfig
from halyard_operator.kube.apply import write
from halyard_operator.kube.client import KubeClient
from halyard_operator.kube.paths import describe
from halyard_operator.names import DEGRADED, NORMAL, STATE_ANNOTATION, WARNING, EventReason, Reason
from halyard_operator.reconcile.failures import recheck_after
from halyard_operator.reconcile.conditions import find, first_failing_reason, merge_conditions
from halyard_operator.builders.pools import resolve_pools
from halyard_operator.policy import CapacityDecision, ScalingState
from halyard_operator.reconcile.fleet import FleetBook
from halyard_operator.reconcile.memory import Written
from halyard_operator.observe import Observed
from halyard_operator.observe.live import SecretCache, observe
from halyard_operator.observe.view import ClusterView
from halyard_operator.reconcile.plan import Plan, make_plan, observed_pools
from halyard_operator.reconcile.scaling import ScalingInputs, apply_decision, decide, key_of
from halyard_operator.builders.args import PORT
from halyard_operator.signals.demand import RouterDemand, demand_floor, router_targets, scrape_demand, \
    with_router_queue
from halyard_operator.signals.hub import MetricsHub, scrape_targets
from halyard_operator.reconcile.status import current_conditions, current_cost, status_fields
from halyard_operator.reconcile.validate import Problem
from halyard_operator.telemetry import OperatorMetrics

log = logging.getLogger("halyard_operator.reconcile")
SECRET_RECHECK_S = 30.0  # a missing imagePullSecret is looked up again this often


class EventSink(Protocol):
    def __call__(self, body: dict, type_: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class ReconcileContext:
    """What reconcile needs besides the object: the API client (writes only,
    plus pull-secret checks), the config, an event sink (Kubernetes Events), a
    clock returning RFC 3339 UTC, the serving signals, the fleet's GPU
    demands, the watch-fed view of the cluster, the pull-secret cache and the
    memory of its own writes (the last five are the operator's memory, shared
    by every reconcile)."""

    kube: KubeClient
    config: OperatorConfig
    events: EventSink
    now: Callable[[], str] = lambda: datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hub: MetricsHub = field(default_factory=MetricsHub)
    book: FleetBook = field(default_factory=FleetBook)
    view: ClusterView = field(default_factory=ClusterView)
    secrets: SecretCache = field(default_factory=SecretCache)
    written: Written = field(default_factory=Written)
    clock: Callable[[], float] = time.time
    telemetry: OperatorMetrics = field(default_factory=OperatorMetrics)


def memo_key(owner: Owner) -> str:
    """The key of a deployment's own-writes memory (with the uid: a re-created object starts afresh)."""
    return f"{owner.namespace}/{owner.name}/{owner.uid}"


def owner_of(body: dict) -> Owner:
    meta = body["metadata"]
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))


async def reconcile(ctx: ReconcileContext, body: dict, sample: bool = False) -> Plan:
    """Bring the children and status of `body` (an LLMDeployment) up to date.
    `sample`: first take a sample of an autoscaled object's serving signals."""
    owner = owner_of(body)
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return Plan()  # going away: the garbage collector removes the children
    memo = memo_key(owner)
    body = ctx.written.body_over(memo, body)
    spec, problems = _parse(body)
    decision = None
    if spec is not None:
        observed = await observe(ctx.view, ctx.kube, owner, spec, ctx.clock(), ctx.secrets)
        indexed = observed.children
        observed = replace(observed, children=ctx.written.children_over(memo, indexed))
        if sample and spec.scaling is not None:
            await _sample(ctx, owner, spec, observed)
        decision = await _decide(ctx, body, owner, spec, observed)
    else:
        indexed = ctx.view.children(owner)
        observed = Observed(children=ctx.written.children_over(memo, indexed))
    sized = (decision.desired, decision.counts) if decision else None
    plan = make_plan(owner, spec, problems, observed, ctx.config, sized)
    children = observed.children
    if plan.writes or plan.deletes:
        children = await _apply(ctx, body, plan, observed.children, indexed)
    if decision is not None and plan.counts is not None:
        drained = await apply_decision(ctx.kube, body, decision, observed, ctx.events)
        ctx.written.wrote_state(memo, decision.state.to_json())
        _count_decision(ctx, body, owner, decision, drained)
    await _update_status(ctx, body, owner, spec, plan, children, decision if plan.counts else None)
    return replace(plan, recheck_after=_recheck(observed))


def _recheck(observed: Observed) -> float | None:
    """When to look again without an event: an unschedulable pod coming due, or a
    missing pull secret (Secrets are not watched: the operator may only get them)."""
    due = [t for t in (recheck_after(observed.pods), SECRET_RECHECK_S if observed.missing_secrets else None)
           if t is not None]
    return min(due, default=None)


async def _sample(ctx: ReconcileContext, owner: Owner, spec: LLMDeploymentSpec, observed: Observed) -> None:
    """Scrape the Ready worker pods just observed (or query Prometheus) into the deployment's window."""
    selector = f'namespace="{owner.namespace}",pod=~"{owner.name}-(ondemand|spot)-.*"'
    await ctx.hub.refresh(key_of(owner), scrape_targets(observed.pods, PORT, spec.model.name), selector)


async def _decide(ctx: ReconcileContext, body: dict, owner: Owner, spec: LLMDeploymentSpec,
                  observed: Observed) -> CapacityDecision | None:
    """The scaling policies' decision; None when the tier is unknown (a blocking problem)."""
    if spec.tier not in ctx.config.tiers:
        return None
    pools = observed_pools(spec, ctx.config, observed) or resolve_pools(spec, ctx.config, ())
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    key, now = key_of(owner), ctx.clock()
    demand = await _router_demand(ctx, owner, spec)
    inputs = ScalingInputs(metrics=with_router_queue(ctx.hub.metrics(key, now), demand), loads=ctx.hub.loads(key),
                           now=now, state=ScalingState.from_json(annotations.get(STATE_ANNOTATION)),
                           gpu_claims=ctx.view.gpu_claims(),
                           demand_floor=_demand_floor(spec, demand, now),
                           alive=ctx.view.deployment_exists if ctx.view.deployments_known else None)
    return decide(owner, spec, ctx.config, pools.spot is not None, observed, inputs, ctx.book)


def _count_decision(ctx: ReconcileContext, body: dict, owner: Owner, decision: CapacityDecision,
                    drained: int) -> None:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    before = ScalingState.from_json(annotations.get(STATE_ANNOTATION)).desired
    ctx.telemetry.decided(owner, decision.desired if before is None else before, decision.desired, decision.wanted)
    ctx.telemetry.drained(owner, drained)


async def _router_demand(ctx: ReconcileContext, owner: Owner, spec: LLMDeploymentSpec) -> RouterDemand | None:
    """What an autoscaled deployment's router pods hold, queue and serve (None: no router answered)."""
    if spec.scaling is None or not spec.router.enabled:
        return None
    return await scrape_demand(router_targets(ctx.view.router_pods(owner), PORT))


def _demand_floor(spec: LLMDeploymentSpec, demand: RouterDemand | None, now: float) -> int | None:
    """For `minReplicas: 0` behind a router: the replicas the routers' demand needs."""
    if spec.scaling is None or spec.scaling.min_replicas != 0 or not spec.router.enabled:
        return None
    return demand_floor(demand, now, spec.scaling.behavior.scale_down.stabilization_window)


def _parse(body: dict) -> tuple[LLMDeploymentSpec | None, list[Problem]]:
    try:
        return parse_spec(body.get("spec")), []
    except InvalidSpec as exc:
        return None, [Problem(Reason.INVALID_SPEC, f"{exc}; fix the spec and apply it again")]


# Written after everything else of a plan: the API server checks a RoleBinding
# against its Role (an operator without the `bind` verb may only bind a Role
# that exists and whose rules it holds).
WRITTEN_LAST = frozenset({"RoleBinding"})


async def _write_all(kube: KubeClient, writes: tuple[dict, ...]) -> list:
    """Write `writes` concurrently, RoleBindings after the rest; each result is the
    server's answer or the exception that write raised."""
    results: dict[int, object] = {}
    for last in (False, True):
        batch = [i for i, obj in enumerate(writes) if (obj["kind"] in WRITTEN_LAST) == last]
        answers = await asyncio.gather(*(write(kube, writes[i]) for i in batch), return_exceptions=True)
        results.update(zip(batch, answers))
    return [results[i] for i in range(len(writes))]


async def _apply(ctx: ReconcileContext, body: dict, plan: Plan, live: dict, indexed: dict) -> dict:
    """Write and delete what the plan says, all at once; returns the children as the
    server answered (the watch brings the same objects to the index a moment later).
    Every write that succeeded is remembered and gets its Event even when another
    failed; the first failure is raised afterwards (the retry redoes the rest)."""
    ns = body["metadata"]["namespace"]
    results = await _write_all(ctx.kube, plan.writes)
    done = [(obj, answer) for obj, answer in zip(plan.writes, results) if not isinstance(answer, BaseException)]
    deleted = await asyncio.gather(*(ctx.kube.delete(kind, name, ns) for kind, name in plan.deletes))
    children = dict(live)
    ctx.written.wrote_children(memo_key(owner_of(body)), {
        **{(o["kind"], o["metadata"]["name"]): a for o, a in done if a is not None},
        **{child: None for child, gone in zip(plan.deletes, deleted)}}, indexed)
    for obj, answer in done:
        key = (obj["kind"], obj["metadata"]["name"])
        verb = EventReason.UPDATED if key in live else EventReason.CREATED
        children[key] = answer if answer is not None else obj
        what = describe(obj["kind"], key[1], ns)
        log.info("%s %s", verb, what)
        ctx.events(body, NORMAL, verb, f"{verb} {what}")
    for (kind, name), gone in zip(plan.deletes, deleted):
        children.pop((kind, name), None)
        if gone:
            log.info("Deleted %s", describe(kind, name, ns))
            ctx.events(body, NORMAL, EventReason.DELETED, f"Deleted {describe(kind, name, ns)}")
    failed = next((answer for answer in results if isinstance(answer, BaseException)), None)
    if failed is not None:
        raise failed
    return children


async def _update_status(ctx: ReconcileContext, body: dict, owner: Owner, spec: LLMDeploymentSpec | None,
                         plan: Plan, children: dict, decision: CapacityDecision | None) -> None:
    old = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    conds = current_conditions(spec, plan.counts, plan.target, children, owner, list(plan.problems), decision)
    conditions = merge_conditions(old.get("conditions") or [], conds, generation, ctx.now())
    new = {**status_fields(owner, generation, children, spec, decision), "conditions": conditions,
           "reason": first_failing_reason(conditions)}
    if spec is not None:
        new["cost"] = _priced(ctx, owner, spec, children, new)
    _report_degraded(ctx, body, old.get("conditions") or [], conditions)
    ctx.telemetry.conditions(owner, {c["type"]: c["status"] for c in old.get("conditions") or []},
                             {c["type"]: c["status"] for c in conditions})
    if all(old.get(k) == v for k, v in new.items()):
        return
    await ctx.kube.patch_status("LLMDeployment", owner.name, owner.namespace, new)
    ctx.written.wrote_status(memo_key(owner), new)
    log.info("Updated status of LLMDeployment %s/%s", owner.namespace, owner.name)


def _priced(ctx: ReconcileContext, owner: Owner, spec: LLMDeploymentSpec, children: dict, new: dict) -> dict:
    """status.cost; the cost, replica and objective gauges follow the same figures."""
    cost = current_cost(spec, children, owner, ctx.config)
    ctx.telemetry.priced(owner, cost)
    slo = spec.scaling.slo if spec.scaling else None
    ctx.telemetry.described(owner, new["onDemandReplicas"], new["spotReplicas"],
                            {"ttft_p95": slo.ttft_p95 if slo else None, "itl_p95": slo.itl_p95 if slo else None})
    return cost.to_status()


def _report_degraded(ctx: ReconcileContext, body: dict, before: list[dict], after: list[dict]) -> None:
    """One Warning event per new Degraded cause (not one per timer tick or restart), and a
    Normal Recovered event when Degraded clears."""
    old, new = find(before, DEGRADED) or {}, find(after, DEGRADED) or {}
    if new.get("status") != "True":
        if old.get("status") == "True" and new:
            ctx.events(body, NORMAL, EventReason.RECOVERED, f"no longer degraded (was {old.get('reason')}): "
                                                            f"{new.get('message')}")
        return
    if (old.get("status"), old.get("reason"), old.get("message")) == ("True", new["reason"], new["message"]):
        return
    name = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
    log.warning("LLMDeployment %s is degraded (%s): %s", name, new["reason"], new["message"])
    ctx.events(body, WARNING, new["reason"], new["message"])
