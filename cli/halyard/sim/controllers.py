"""Policies under comparison. Each sets fleet targets for its lanes at every tick.

  halyard       the operator's own decision function (`decide_capacity`, what
                reconcile's `plan_capacity` calls), unchanged, and the tier
                arbiter (`policy.tiers.arbitrate`) the way reconcile applies it:
                decide, ask for the wanted size, decide again capped at the grant;
  static-peak   sized once for the workload's peak at the ITL SLO (longest
                prompts of the run), within maxReplicas, on on-demand; what the
                on-demand pool cannot hold goes to the spot pool (where a fixed
                Deployment's extra pods would schedule), and what the cluster
                cannot hold is granted in the arbiter's tier order;
  reactive      on-demand only, HPA algorithm on per-replica load (waiting +
                running requests) with target = 80% of the batch a replica runs
                at the SLO, 10% tolerance, 5 min scale-down stabilisation and
                the scale-down rate an LLM HPA is given (10% of pods per minute);
  all-spot      Halyard's autoscaler, every replica on spot, no on-demand floor,
                no overprovision, no fallback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from halyard_operator.config import DEFAULT_TIERS
from halyard_operator.policy.autoscaler import AutoscalerState
from halyard_operator.policy.capacity import CapacityState, PoolObservation, plan_pools
from halyard_operator.policy.decide import CapacityObservation, decide_capacity
from halyard_operator.policy.plan import _events as plan_events
from halyard_operator.policy.params import DeploymentParams, SpotParams
from halyard_operator.policy.tiers import Demand, arbitrate
from halyard.sim.fleet import OD, SPOT
from halyard.sim.model import Pool, SimDeployment
from halyard.sim.serving import MAX_PREFILL_SHARE
from halyard_operator.signals.types import DeploymentMetrics

POLICIES = ("halyard", "static-peak", "reactive", "all-spot")


@dataclass(frozen=True)
class LaneView:
    """What a controller sees of one lane at a tick (metrics as the operator would scrape them)."""

    metrics: DeploymentMetrics
    ready: tuple[int, int]  # per pool
    starting: tuple[int, int]
    stuck: tuple[int, int]
    stuck_age_s: tuple[float, float]
    lost: tuple[int, int]

    def observation(self, current: int) -> CapacityObservation:
        """The lane as the operator's decision function sees a deployment: stuck
        (unschedulable) replicas carry their age, starting ones count as young."""
        pools = [PoolObservation(ready=self.ready[p], lost=self.lost[p],
                                 pending_ages_s=(self.stuck_age_s[p],) * self.stuck[p] + (0.0,) * self.starting[p])
                 for p in (OD, SPOT)]
        return CapacityObservation(current=current, on_demand=pools[OD], spot=pools[SPOT])


class HalyardController:
    """The operator's policies, one state per deployment (kept like the operator keeps it)."""

    def __init__(self, deps: list[SimDeployment], has_spot: bool, all_spot: bool = False):
        self.deps, self.has_spot, self.all_spot = deps, has_spot, all_spot
        self.scale_state = [AutoscalerState() for _ in deps]
        self.cap_state = [CapacityState() for _ in deps]
        self.desired = [d.params.scaling.min_replicas for d in deps]
        self.params = [self._params(d) for d in deps]
        self.events: list[str] = []

    def _spot(self, dep: SimDeployment) -> tuple[SpotParams, bool]:
        if self.all_spot:
            return SpotParams(enabled=True, on_demand_floor=0, fallback=False), True
        return dep.params.capacity.spot, self.has_spot and DEFAULT_TIERS[dep.params.tier].spot_allowed

    def _params(self, dep: SimDeployment) -> DeploymentParams:
        spot, _ = self._spot(dep)
        return replace(dep.params, capacity=replace(dep.params.capacity, spot=spot))

    def start(self, i: int, n: int) -> tuple[int, int]:
        """Warm start: the deployment already runs `n` replicas, spot Ready."""
        self.desired[i] = n
        spot, allowed = self._spot(self.deps[i])
        plan = plan_pools(n, spot, allowed, PoolObservation(ready=n), PoolObservation(ready=n), 0.0, CapacityState())
        return plan.on_demand, plan.spot

    def tick_all(self, t: float, views: list[LaneView], budget_gpus: int) -> list[tuple[int, int]]:
        """Every deployment's decision, then the arbiter's grants, then the capped decisions."""
        first = [self._decide(t, i, view) for i, view in enumerate(views)]
        demands = tuple(
            Demand(d.params.name, d.params.tier, max(d.params.gpus_per_replica, 1),
                   min(d.params.scaling.min_replicas, c.wanted), c.wanted,
                   sum(v.ready) + sum(v.starting))
            for d, c, v in zip(self.deps, first, views))
        grants = arbitrate(demands, budget_gpus, DEFAULT_TIERS)
        out = []
        for i, (dep, choice, view) in enumerate(zip(self.deps, first, views)):
            granted = grants[dep.params.name].granted
            if granted < choice.desired:
                choice = self._decide(t, i, view, cap=granted)
            out.append(self._keep(t, i, choice))
        return out

    def tick(self, t: float, i: int, view: LaneView) -> tuple[int, int]:
        """One deployment's decision with no arbiter (plenty of GPUs)."""
        return self._keep(t, i, self._decide(t, i, view))

    def _decide(self, t: float, i: int, view: LaneView, cap: int | None = None):
        _, allowed = self._spot(self.deps[i])
        return decide_capacity(self.params[i], allowed, view.observation(self.desired[i]), view.metrics, t,
                               self.scale_state[i], self.cap_state[i], cap)

    def _keep(self, t: float, i: int, choice) -> tuple[int, int]:
        dep = self.deps[i]
        if len(self.events) < 2000:  # the Events reconcile would post (`Scaled`, with its sentence)
            self.events += [f"t={t:8.0f}s {e.message}"
                            for e in plan_events(dep.params.name, self.desired[i], choice.desired, choice.scaled, ())]
        if choice.capacity.fallback_since is not None and self.cap_state[i].fallback_since is None \
                and len(self.events) < 2000:
            self.events.append(f"t={t:8.0f}s {dep.params.name}: {choice.conditions[0].message}")
        self.desired[i], self.scale_state[i], self.cap_state[i] = choice.desired, choice.autoscaler, choice.capacity
        return choice.counts.on_demand, choice.counts.spot


class PerLane:
    """Baselines decide lane by lane; no arbiter."""

    def tick_all(self, t: float, views: list[LaneView], budget_gpus: int) -> list[tuple[int, int]]:
        return [self.tick(t, i, view) for i, view in enumerate(views)]


def replica_capacity(dep: SimDeployment, prompt_scale: float = 1.0) -> tuple[float, float, float]:
    """(requests/s, running requests, running requests at 80% of that rate) one replica
    sustains with ITL <= 0.9 * itlP95.

    Solves the serving model's steady state: with batch b and step s(b),
    rate r = b / (out * s + b * in / prefill) and ITL = s / (1 - r * in / prefill),
    with the prefill share r * in / prefill <= MAX_PREFILL_SHARE.
    """
    prof = dep.profile
    itl_target = 0.9 * (dep.params.scaling.slo.itl_p95_s or 0.1)
    prompt = dep.input_tokens * prompt_scale
    slots = min(prof.max_batch, prof.kv_capacity_tokens / (prompt + dep.output_tokens / 2))
    per_req_prefill = prompt / prof.prefill_tokens_per_s
    points = []
    for batch in np.linspace(1, slots, 400):
        step = prof.step_time(batch)
        rate = batch / (dep.output_tokens * step + batch * per_req_prefill)
        share = rate * per_req_prefill
        if share <= MAX_PREFILL_SHARE and step / (1 - share) <= itl_target:
            points.append((rate, batch))
    if not points:
        return 0.0, 1.0, 1.0
    rate, batch = max(points)
    at_80 = min((b for r, b in points if r >= 0.8 * rate), default=batch)
    return rate, batch, at_80


class StaticController(PerLane):
    def __init__(self, deps: list[SimDeployment], peak_rates: np.ndarray, pools: dict[str, Pool],
                 prompt_scale: float = 1.0):
        want = [min(d.params.scaling.max_replicas,
                    max(d.params.scaling.min_replicas,
                        math.ceil(rate / max(replica_capacity(d, prompt_scale)[0], 1e-9))))
                for d, rate in zip(deps, peak_rates)]
        demands = tuple(Demand(d.params.name, d.params.tier, max(d.params.gpus_per_replica, 1),
                               min(d.params.scaling.min_replicas, n), n, 0) for d, n in zip(deps, want))
        od_gpus = _pool_gpus(pools.get("on-demand"))
        grants = arbitrate(demands, od_gpus + _pool_gpus(pools.get("spot")), DEFAULT_TIERS)
        order = sorted(range(len(deps)), key=lambda i: -DEFAULT_TIERS[deps[i].params.tier].shedding_order)
        self.n = _on_demand_first([grants[d.params.name].granted for d in deps],
                                  [max(d.params.gpus_per_replica, 1) for d in deps], od_gpus, order)

    def start(self, i: int, n: int) -> tuple[int, int]:
        return self.n[i]

    def tick(self, t: float, i: int, view: LaneView) -> tuple[int, int]:
        return self.n[i]


def _pool_gpus(pool: Pool | None) -> int:
    return 0 if pool is None else pool.max_nodes * pool.gpus_per_node


def _on_demand_first(granted: list[int], gpus: list[int], od_gpus: int, order: list[int]) -> list[tuple[int, int]]:
    """(on-demand, spot) replicas per lane: lanes in `order` (highest tier first) fill the
    on-demand GPUs, the rest goes to spot."""
    out, free = [(0, 0)] * len(granted), od_gpus
    for i in order:
        od = min(granted[i], free // gpus[i])
        free -= od * gpus[i]
        out[i] = (od, granted[i] - od)
    return out


class ReactiveController(PerLane):
    """Kubernetes HPA on (waiting + running) per replica, all on-demand.

    HPA's rules: desired = ceil(total load / target per replica) (pods not
    Ready count as zero load), no change within 10% of target, scale-down to
    the highest recommendation of the last 5 minutes, and at most
    DOWN_RATE of the pods per DOWN_PERIOD_S (a `behavior.scaleDown.policies`
    entry: without it one quiet window drops a deployment to a fraction at once).
    Scale-up follows HPA's default `behavior.scaleUp`: per 15 s at most 100%
    more pods or 4 more, whichever is larger, than at the period's start.
    """

    TOLERANCE, WINDOW_S = 0.1, 300.0
    DOWN_RATE, DOWN_PERIOD_S = 0.1, 60.0
    UP_PERIOD_S, UP_PODS = 15.0, 4

    def __init__(self, deps: list[SimDeployment]):
        self.deps = deps
        self.target = [replica_capacity(d)[2] for d in deps]
        self.current = [d.params.scaling.min_replicas for d in deps]
        self.history: list[list[tuple[float, int]]] = [[] for _ in deps]
        self.sizes: list[list[tuple[float, int]]] = [[] for _ in deps]  # (time, size) for the rate policy

    def start(self, i: int, n: int) -> tuple[int, int]:
        self.current[i] = n
        self.history[i] = [(0.0, n)]
        self.sizes[i] = [(0.0, n)]
        return n, 0

    def tick(self, t: float, i: int, view: LaneView) -> tuple[int, int]:
        dep, m = self.deps[i].params.scaling, view.metrics
        cur = self.current[i]
        load = m.queue + m.running
        rec = cur
        if abs(load / (max(cur, 1) * self.target[i]) - 1) > self.TOLERANCE:
            rec = math.ceil(load / self.target[i])
        hist = [(ts, n) for ts, n in self.history[i] if ts > t - self.WINDOW_S] + [(t, rec)]
        self.history[i] = hist
        new = rec if rec > cur else min(cur, max(n for _, n in hist))
        sizes = [(ts, n) for ts, n in self.sizes[i] if ts > t - self.DOWN_PERIOD_S] + [(t, cur)]
        start = min(n for ts, n in sizes if ts > t - self.UP_PERIOD_S + 1e-9)  # replicas at the period's start
        new = min(new, max(2 * start, start + self.UP_PODS))
        floor = math.floor(max(n for _, n in sizes) * (1 - self.DOWN_RATE))
        new = max(new, min(floor, cur - 1))  # at most 10% per period, at least one pod
        self.current[i] = min(max(new, dep.min_replicas), dep.max_replicas)
        self.sizes[i] = sizes
        return self.current[i], 0


def make_controllers(deps, pools: dict[str, Pool], peak_rates, prompt_scale: float = 1.0) -> dict:
    return {
        "halyard": HalyardController(deps, "spot" in pools),
        "static-peak": StaticController(deps, peak_rates, pools, prompt_scale),
        "reactive": ReactiveController(deps),
        "all-spot": AllSpot(deps),
    }


class AllSpot(HalyardController):
    """Every replica on spot (without a spot pool, none of them ever schedules)."""

    def __init__(self, deps):
        super().__init__(deps, has_spot=True, all_spot=True)

    def start(self, i, n):
        od, spot = super().start(i, n)
        return 0, od + spot

    def tick_all(self, t, views, budget_gpus):
        return [(0, od + spot) for od, spot in super().tick_all(t, views, budget_gpus)]
