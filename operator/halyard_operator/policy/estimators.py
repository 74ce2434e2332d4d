"""Online estimators the autoscaler keeps in its state: per-replica capacity and a Holt forecast.

Both are pure: (previous value, observation) -> new value.
"""
from __future__ import annotations

from dataclasses import dataclass

PROBE_GROWTH = 1.02  # capacity estimate growth per evaluation with deep headroom
PROBE_CEILING = 1.3  # probing never goes past this multiple of the best rate seen healthy
PROBE_QUIET_S = 2 * 3600.0  # no probing this long after the last saturation
MAX_CUT = 0.7  # one observation lowers the estimate by at most 30%
SATURATION_MARGIN = 0.9  # after a saturation, trust a bit less than what replicas completed
LATENCY_AIM = 0.5  # the probe may reach the load at which the worse p95 would be this share of its target
MAX_REACH = 2.0  # ... but never past this multiple of the rate a replica carries now
PROBE_DECAY = 0.98  # an estimate above the probe's bound returns to it by this factor per evaluation
BUDGET_AIM = 0.9  # the probe stops at this share of the load that fills the engine's prefill budget
PREFILL_STEP_SHARE = 0.5  # share of a full step's time its prefill chunk takes (the engine's step model)


SLO_MARGIN = 0.85  # act when a p95 passes this share of its target: a p95 AT target still misses 5%
QUEUE_SATURATED = 0.5  # queue per replica, as a share of targetQueuePerReplica, that means "full"


@dataclass(frozen=True)
class Health:
    """How a deployment is doing against its targets (ratios: observed / target; 0 when unknown)."""

    ttft_ratio: float
    itl_ratio: float
    queue_ratio: float
    kv_ratio: float

    @property
    def slo_met(self) -> bool:
        return self.ttft_ratio <= 1.0 and self.itl_ratio <= 1.0

    @property
    def latency_pressure(self) -> float:
        """max(p95 / target) / SLO_MARGIN: above 1 means scale up by about this factor."""
        return max(self.ttft_ratio, self.itl_ratio) / SLO_MARGIN

    @property
    def throughput_bound(self) -> bool:
        """Requests queue: replicas are completing all they can."""
        return self.queue_ratio > QUEUE_SATURATED

    @property
    def saturated(self) -> bool:
        return self.latency_pressure > 1.0 or self.queue_ratio > QUEUE_SATURATED or self.kv_ratio > 1.0

    @property
    def queue_delays(self) -> bool:
        """A queue that costs latency: TTFT p95 past half its target, or more waiting than the target."""
        return self.throughput_bound and (self.ttft_ratio > 0.5 or self.queue_ratio > 1.0)

    @property
    def headroom(self) -> bool:
        """Deep inside every target: safe to believe a replica could take more."""
        return max(self.ttft_ratio, self.itl_ratio) < 0.5 and self.queue_ratio < 0.25 and self.kv_ratio < 0.6


@dataclass(frozen=True)
class CapacityEstimate:
    """Learned sustainable load per ready replica, in `unit`/s.

    `unit`: "tokens" (prompt + generated tokens: a replica's capacity in
    requests falls as prompts grow, in tokens it holds) when the workers
    report token counters, else "requests".
    `rps`: the estimate (None until something was observed); `best_healthy`:
    the highest per-replica rate seen while every target was met;
    `saturated_at`: the last time replicas were seen saturated.
    """

    rps: float | None = None
    best_healthy: float = 0.0
    saturated_at: float | None = None
    unit: str = "requests"


def latency_reach(health: Health) -> float:
    """The load, as a multiple of the rate a replica carries now, at which the worse p95
    would be LATENCY_AIM of its target (latency taken as growing in proportion to load),
    at most MAX_REACH."""
    worst = max(health.ttft_ratio, health.itl_ratio)
    return MAX_REACH if worst <= 0 else min(MAX_REACH, LATENCY_AIM / worst)


def budget_reach(budget_use: float | None) -> float | None:
    """BUDGET_AIM of the load, as a multiple of the rate now, that fills the engine's
    prefill budget (None when the workers do not report it).

    The budget's use is not proportional to the load: a step's time is its decodes
    plus its prefill, and a full step's prefill takes PREFILL_STEP_SHARE of it, so the
    budget fills at rate * ((1 - share) / use + share)."""
    if budget_use is None or budget_use <= 0:
        return None
    return BUDGET_AIM * ((1 - PREFILL_STEP_SHARE) / min(budget_use, 1.0) + PREFILL_STEP_SHARE)


def probe_bound(best: float, rate: float, health: Health, budget_use: float | None) -> float:
    """How high the estimate may probe: PROBE_CEILING x the best healthy rate, or further
    while the latency shows room, never past BUDGET_AIM of the prefill budget's cliff."""
    bound = max(best * PROBE_CEILING, rate * latency_reach(health))
    cliff = budget_reach(budget_use)
    return bound if cliff is None else min(bound, max(rate, rate * cliff))


def update_capacity(est: CapacityEstimate, per_replica_rate: float, health: Health, now: float,
                    budget_use: float | None = None) -> CapacityEstimate:
    """Fold one observation of the completion rate per ready replica into the estimate.

    Invariant: `rps` is None only if nothing was learned yet, else > 0.
    - a queue that delays requests (`Health.queue_delays`): replicas complete
      what they can, so the estimate drops to (a margin under) that rate, by at
      most 1 - MAX_CUT; a short queue that costs no latency (Poisson bursts
      admitted a step later) says nothing about capacity;
    - latency pressure (a p95 past SLO_MARGIN of its target, or full KV caches):
      the replicas carry more than they can at the SLO (probing, or learning
      while over-provisioned, overshot), so the estimate drops the same way;
    - healthy: the observed rate is a lower bound; the estimate rises to it;
    - deep headroom, no saturation for PROBE_QUIET_S: probe upward by
      PROBE_GROWTH, up to `probe_bound`: PROBE_CEILING x the best healthy
      rate, or further while the latency shows room, within the prefill
      budget's cliff where the workers report it. Replicas that carry less
      than the plan gives them (spare spot replicas share the load) are
      still seen to have room;
    - above that bound (a reach granted at a lighter load), the estimate decays
      by PROBE_DECAY per evaluation back to it.
    """
    if per_replica_rate <= 0:
        return est
    if health.queue_delays or health.latency_pressure > 1.0 or health.kv_ratio > 1.0:
        measured = per_replica_rate * SATURATION_MARGIN
        rps = measured if est.rps is None else min(est.rps, max(measured, est.rps * MAX_CUT))
        return CapacityEstimate(rps, est.best_healthy, now, est.unit)
    if health.throughput_bound:  # a queue that costs no latency: hold what was learned
        return CapacityEstimate(est.rps or per_replica_rate, est.best_healthy, est.saturated_at, est.unit)
    best = max(est.best_healthy, per_replica_rate)
    rps = max(est.rps or 0.0, per_replica_rate)
    bound = probe_bound(best, per_replica_rate, health, budget_use)
    quiet = est.saturated_at is None or now - est.saturated_at >= PROBE_QUIET_S
    if health.headroom and quiet and per_replica_rate > 0.5 * rps:
        rps = max(rps, min(rps * PROBE_GROWTH, bound))
    if rps > bound:
        rps = max(bound, per_replica_rate, rps * PROBE_DECAY)
    return CapacityEstimate(rps, best, est.saturated_at, est.unit)


@dataclass(frozen=True)
class HoltState:
    """Holt linear trend: `level` (req/s) and `trend` (req/s per second) at time `at`."""

    level: float
    trend: float
    at: float


HOLT_ALPHA = 0.3
HOLT_BETA = 0.1
MAX_GROWTH = 2.0  # a forecast never exceeds twice the current level


def holt_update(state: HoltState | None, rate: float, now: float) -> HoltState:
    """Fold one rate observation in; the trend is per second so uneven intervals are fine."""
    if state is None or now <= state.at:
        return HoltState(level=rate, trend=0.0 if state is None else state.trend, at=now)
    dt = now - state.at
    predicted = state.level + state.trend * dt
    level = HOLT_ALPHA * rate + (1 - HOLT_ALPHA) * predicted
    trend = HOLT_BETA * (level - state.level) / dt + (1 - HOLT_BETA) * state.trend
    return HoltState(level=level, trend=trend, at=now)


def holt_forecast(state: HoltState | None, horizon_s: float) -> float:
    """Rate expected `horizon_s` ahead, within [0, MAX_GROWTH * level]."""
    if state is None:
        return 0.0
    return min(max(0.0, state.level + state.trend * horizon_s), MAX_GROWTH * state.level)


@dataclass(frozen=True)
class StartTime:
    """How long new replicas take to serve, learned from scale-ups (node provisioning +
    image pull + weight load, as this deployment sees them).

    `learned_s`: the latest completed scale-up's time from decision to Ready (None
    until one completed); `waiting`: (decided at, replicas wanted) of the scale-up
    in flight, or None.
    """

    learned_s: float | None = None
    waiting: tuple[float, int] | None = None


def update_start_time(st: StartTime, ready: int, desired: int, now: float) -> StartTime:
    """Time a scale-up that needs new pods (desired > ready) until `ready` reaches it;
    a scale-up cut back below what is Ready is dropped unmeasured."""
    if st.waiting is not None:
        since, wanted = st.waiting
        if ready >= wanted:
            return StartTime(now - since, None)
        if desired < wanted:
            return StartTime(st.learned_s, None if desired <= ready else (since, desired))
        return st
    if desired > ready:
        return StartTime(st.learned_s, (now, desired))
    return st
