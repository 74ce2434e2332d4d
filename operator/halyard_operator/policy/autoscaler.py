"""SLO-driven autoscaler: (params, observed replicas, metrics, clock, state) -> ScaleDecision.

Pure. The recommendation is the max of these signals, each HPA-shaped
(independent of how many replicas are pending, so re-evaluating while a
scale-up is still provisioning never compounds it):
  - rate: planned load / (learned per-replica capacity * utilization),
    planned load = max(current, Holt forecast at lead time) when predictive.
    Load is tokens/s (prompt + generated) when the workers report token
    counters, so a period of long prompts needs more replicas at the same
    request rate; requests/s otherwise;
  - queue: ready * (waiting per replica / targetQueuePerReplica), at most doubling,
    unless the queue is draining (shrinking fast enough to be gone within
    QUEUE_DRAIN_S: the Ready replicas are clearing it);
  - surge: when requests queue and per-replica capacity is known, the arrival
    rate the queue implies (completions + the queue's change per second) plus
    the queue drained within QUEUE_DRAIN_S, over that capacity: one step to
    the size a sudden surge needs, instead of doubling per evaluation while
    new replicas are still starting (and it holds while they cannot schedule);
  - SLO: ready * (observed p95 / (SLO_MARGIN * target)), at most doubling, when a
    p95 passes SLO_MARGIN of its target (a p95 at target already misses 5% of requests);
    a TTFT p95 is not doubled on while the queue drains (the window still shows
    the backlog's wait, not what the Ready replicas do now);
  - KV: ready * (KV usage / target KV usage) when caches are full.
Up fast (min recommendation over the scale-up window, usually now), down slow
(max recommendation over the scale-down window, one step per cooldown).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from halyard_operator.policy.estimators import (
    SLO_MARGIN, CapacityEstimate, Health, HoltState, StartTime, holt_forecast, holt_update, update_capacity,
    update_start_time,
)
from halyard_operator.policy.params import ScalingParams
from halyard_operator.signals.types import DeploymentMetrics

MIN_FORECAST_WINDOW_S = 30.0  # shorter metric windows (just after start) are too noisy to trend
QUEUE_DRAIN_S = 60.0  # a surge's backlog is planned to drain within this once capacity is there


@dataclass(frozen=True)
class ReplicaObservation:
    """Replicas as observed. Invariant: ready + pending <= current + (surplus being removed).

    `current`: the serving target the operator asked for last time (spare spot
    replicas from overprovision excluded);
    `ready`: Ready pods serving traffic, spares included (not on interrupted nodes);
    `pending`: created but not Ready yet (not capacity).
    """

    current: int
    ready: int
    pending: int = 0


@dataclass(frozen=True)
class AutoscalerState:
    """What the autoscaler remembers between evaluations (JSON-serialisable via `to_dict`).

    `history`: (time_s, recommendation) pairs inside the longest window, plus the
    newest older one (scale-down needs the whole window observed).
    `capacity`: learned sustainable requests/s per ready replica.
    """

    history: tuple[tuple[float, int], ...] = ()
    capacity: CapacityEstimate = CapacityEstimate()
    holt: HoltState | None = None
    last_change_at: float | None = None
    queue_seen: tuple[float, float] | None = None  # (time_s, waiting requests) at the last evaluation
    start: StartTime = StartTime()

    def to_dict(self) -> dict:
        return {
            "history": [list(item) for item in self.history],
            "capacity": [self.capacity.rps, self.capacity.best_healthy, self.capacity.saturated_at,
                         self.capacity.unit],
            "holt": None if self.holt is None else [self.holt.level, self.holt.trend, self.holt.at],
            "lastChangeAt": self.last_change_at,
            "queue": None if self.queue_seen is None else list(self.queue_seen),
            "start": [self.start.learned_s, None if self.start.waiting is None else list(self.start.waiting)],
        }

    @classmethod
    def from_dict(cls, raw: dict | None) -> "AutoscalerState":
        if not raw:
            return cls()
        holt = raw.get("holt")
        return cls(
            history=tuple((float(t), int(n)) for t, n in raw.get("history", [])),
            capacity=CapacityEstimate(*raw["capacity"]) if raw.get("capacity") else CapacityEstimate(),
            holt=None if holt is None else HoltState(*map(float, holt)),
            last_change_at=raw.get("lastChangeAt"),
            queue_seen=tuple(map(float, raw["queue"])) if raw.get("queue") else None,
            start=_start_from(raw.get("start")),
        )


def _start_from(raw) -> StartTime:
    if not raw:
        return StartTime()
    learned, waiting = raw
    return StartTime(learned, None if waiting is None else (float(waiting[0]), int(waiting[1])))


@dataclass(frozen=True)
class ScaleDecision:
    """Result. Invariant: min_replicas <= desired <= max_replicas.

    `recommended` is the raw (unstabilised, unclamped) recommendation;
    `reason` is a human sentence, e.g. "Scaled team-a/chat-8b 2 -> 4: TTFT p95 820ms > 500ms".
    """

    desired: int
    recommended: int
    reason: str
    slo_at_risk: bool
    state: AutoscalerState


def _health(params: ScalingParams, m: DeploymentMetrics, ready: int) -> Health:
    def ratio(observed, target):
        return 0.0 if observed is None or not target else observed / target

    per_queue = m.queue / max(ready, 1)
    return Health(
        ttft_ratio=ratio(m.ttft_p95_s, params.slo.ttft_p95_s),
        itl_ratio=ratio(m.itl_p95_s, params.slo.itl_p95_s),
        queue_ratio=per_queue / params.target_queue_per_replica,
        kv_ratio=m.kv_usage / params.target_kv_usage,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def _surge(params, m: DeploymentMetrics, health: Health, capacity: float | None, ready: int,
           queue_seen: tuple[float, float] | None, per_request: float = 1.0) -> tuple[int, str] | None:
    """The size that serves the arrivals a growing queue implies and drains it (see module doc)."""
    if not capacity or health.queue_ratio <= 1.0:
        return None
    growth = _queue_change(m, queue_seen)  # arrivals = completions + the queue's change, either way
    inflow = max(0.0, m.request_rate + growth)
    wanted = (inflow + m.queue / QUEUE_DRAIN_S) * per_request / (capacity * params.target_utilization)
    need = math.ceil(min(wanted, 1e6) - 1e-9)  # a tiny learned capacity never recommends infinity
    if need <= ready:
        return None
    return need, (f"surge: arrivals ~{inflow:.1f}/s (queue {m.queue:.0f}, growing {growth:.1f}/s) "
                  f"at {capacity / per_request:.2f}/s per replica")


def _queue_change(m: DeploymentMetrics, queue_seen: tuple[float, float] | None) -> float:
    """Waiting requests gained per second since the last evaluation (negative: draining)."""
    if queue_seen is None or m.at <= queue_seen[0]:
        return 0.0
    return (m.queue - queue_seen[1]) / (m.at - queue_seen[0])


def _draining(m: DeploymentMetrics, queue_seen: tuple[float, float] | None) -> bool:
    """The queue shrinks fast enough to be gone within QUEUE_DRAIN_S: the Ready replicas
    are clearing the backlog, whose wait the window's TTFT p95 still shows."""
    change = _queue_change(m, queue_seen)
    return change < 0 and m.queue <= -change * QUEUE_DRAIN_S


def _load(m: DeploymentMetrics) -> tuple[float, str]:
    """(load, unit): tokens/s when token counters report, else requests/s."""
    tokens = m.prompt_token_rate + m.generation_token_rate
    return (tokens, "tokens") if tokens > 0 else (m.request_rate, "requests")


def _signals(params, obs, m, health, capacity, planned_rate, queue_seen=None) -> list[tuple[int, str]]:
    """(recommendation, why) per signal that has an opinion.

    HPA-shaped signals scale the Ready replicas that belong to the target
    (`min(ready, current)`): spare spot replicas serve traffic but are added
    on top of the target by the capacity planner, so counting them here would
    compound them at every evaluation."""
    ready = max(min(obs.ready, obs.current), 1)
    load, unit = _load(m)
    per_request = load / m.request_rate if m.request_rate > 0 and unit == "tokens" else 1.0
    out: list[tuple[int, str]] = []
    draining = _draining(m, queue_seen)
    if health.queue_ratio > 1.0 and not draining:  # at most doubling: a queue drains at many requests/s per replica
        out.append((max(ready + 1, math.ceil(ready * min(2.0, health.queue_ratio))),
                    f"queue {m.queue / ready:.1f} per replica > {params.target_queue_per_replica:g}"))
    surge = _surge(params, m, health, capacity, ready, queue_seen, per_request)
    if surge:
        out.append(surge)
    ttft_worse = health.ttft_ratio >= health.itl_ratio
    if health.latency_pressure > 1.0 and not (draining and ttft_worse):
        why = (f"TTFT p95 {_ms(m.ttft_p95_s)} > {SLO_MARGIN:.0%} of {_ms(params.slo.ttft_p95_s)}" if ttft_worse
               else f"ITL p95 {_ms(m.itl_p95_s)} > {SLO_MARGIN:.0%} of {_ms(params.slo.itl_p95_s)}")
        out.append((max(ready + 1, math.ceil(ready * min(2.0, health.latency_pressure))), why))
    if health.kv_ratio > 1.0:
        out.append((math.ceil(ready * health.kv_ratio), f"KV cache {m.kv_usage:.0%} full"))
    # Last: on a tie the pressure signal names the decision.
    if capacity:
        need = math.ceil(planned_rate / (capacity * params.target_utilization) - 1e-9)
        if not health.saturated and planned_rate <= load:
            # Today's rate is served within every target at today's size: the
            # model's margin alone is no reason to add replicas (pressure or a
            # forecast rise is).
            need = min(need, ready)
        what = "token rate" if unit == "tokens" else "request rate"
        out.append((need, f"{what} {planned_rate:.2f}/s at {capacity:.2f}/s per replica"))
    elif load <= 0 and m.queue <= 0:
        out.append((0, "no traffic"))
    else:
        out.append((obs.current, "per-replica capacity not learned yet"))
    return out


def _stabilise(params: ScalingParams, obs: ReplicaObservation, history, now, last_change_at) -> int:
    """Desired count (before clamping to [min, max]) from the recommendation history."""
    b = params.behavior
    up_window = [n for t, n in history if t >= now - b.scale_up_window_s]
    down_window = [n for t, n in history if t >= now - b.scale_down_window_s]
    up_rec, down_rec = min(up_window), max(down_window)
    if history[0][0] > now - b.scale_down_window_s:
        down_rec = max(down_rec, obs.current)  # a window not yet observed in full never scales down
    current = obs.current
    if up_rec > current:
        step = max(b.scale_up_max_step, 1)
        return min(up_rec, current + step)
    cooled = last_change_at is None or now - last_change_at >= b.scale_down_cooldown_s
    if down_rec < current and cooled:
        target = max(down_rec, current - b.scale_down_max_step)
        if obs.pending > 0 and obs.ready < current:
            # the target is still filling: trim pending pods only, keep ready ones. Once
            # ready covers the target, pending pods are surplus (e.g. spot pods stuck in a
            # stock-out while on-demand fallback serves): they never block a scale-down.
            target = max(target, obs.ready)
        return target
    return current


def autoscale(
    params: ScalingParams,
    obs: ReplicaObservation,
    metrics: DeploymentMetrics | None,
    now: float,
    state: AutoscalerState,
    name: str = "deployment",
) -> ScaleDecision:
    """Desired replica count for one deployment. See the module docstring for the rule."""
    lo, hi = params.min_replicas, params.max_replicas
    if metrics is None or metrics.stale:
        held = min(max(obs.current, lo), hi)
        return ScaleDecision(held, held, f"Holding {name} at {held}: metrics stale or missing", False, state)
    health = _health(params, metrics, obs.ready)
    serving = metrics.pods_total - metrics.pods_stale  # pods whose requests make up the rate
    steady = obs.ready > 0 and abs(serving - obs.ready) < 0.5  # no replica came or went in the window
    load, unit = _load(metrics)
    learned, holt = state.capacity, state.holt
    if learned.unit != unit:  # the workers started or stopped reporting tokens: learn afresh
        learned, holt = CapacityEstimate(unit=unit), None
    per_replica = load / obs.ready if steady else 0.0
    capacity = update_capacity(learned, per_replica, health, now, metrics.prefill_budget_use)
    if params.predictive and metrics.window_s >= MIN_FORECAST_WINDOW_S:
        holt = holt_update(holt, load, now)
    # Headroom for growth: the forecast at the time new replicas take to serve (the
    # spec's lookahead, or the start-up time measured here when that is longer).
    lead_s = max(params.lead_time_s, state.start.learned_s or 0.0)
    planned = max(load, holt_forecast(holt, lead_s)) if holt else load
    signals = _signals(params, obs, metrics, health, capacity.rps, planned, state.queue_seen)
    recommended, why = max(signals, key=lambda item: item[0])
    horizon = max(params.behavior.scale_up_window_s, params.behavior.scale_down_window_s)
    history = _prune(state.history, now - horizon) + ((now, recommended),)
    raw_desired = _stabilise(params, obs, history, now, state.last_change_at)
    desired = min(max(raw_desired, lo), hi)
    changed = desired != obs.current
    reason = _reason(name, obs.current, desired, recommended, why, hi)
    new_state = replace(state, history=history, capacity=capacity, holt=holt,
                        last_change_at=now if changed else state.last_change_at,
                        queue_seen=(metrics.at, metrics.queue),
                        start=update_start_time(state.start, obs.ready, desired, now))
    at_risk = not health.slo_met or recommended > hi
    return ScaleDecision(desired, recommended, reason, at_risk, new_state)


def _prune(history: tuple, horizon: float) -> tuple:
    """Entries newer than `horizon`, plus the newest older one (it shows the window is covered)."""
    older = [item for item in history if item[0] < horizon]
    return tuple(older[-1:]) + tuple(item for item in history if item[0] >= horizon)


def _reason(name: str, current: int, desired: int, recommended: int, why: str, hi: int) -> str:
    if desired != current:
        return f"Scaled {name} {current} -> {desired}: {why}"
    if recommended > hi and desired == hi:
        return f"Holding {name} at maxReplicas {hi}: {why} wants {recommended}"
    return f"Holding {name} at {current}: {why} (recommends {recommended})"
