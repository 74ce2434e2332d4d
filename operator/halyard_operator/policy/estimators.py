"""Online estimators the autoscaler keeps in its state: per-replica capacity and a Holt forecast.

Both are pure: (previous value, observation) -> new value.
"""
from __future__ import annotations

from dataclasses import dataclass

CAPACITY_SMOOTHING = 0.3  # EWMA weight of a saturated observation
PROBE_GROWTH = 1.05  # capacity estimate growth per healthy evaluation near the estimate


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
    def saturated(self) -> bool:
        return not self.slo_met or self.queue_ratio > 1.0 or self.kv_ratio > 1.0

    @property
    def headroom(self) -> bool:
        """Comfortably inside every target: safe to believe a replica could take more."""
        return max(self.ttft_ratio, self.itl_ratio) < 0.6 and self.queue_ratio < 0.5 and self.kv_ratio < 0.8


def update_capacity(capacity: float | None, per_replica_rate: float, health: Health) -> float | None:
    """Learned sustainable requests/s per ready replica.

    Invariant: the result is None only if nothing was learned yet, else > 0.
    - healthy: the observed per-replica rate is a lower bound -> raise to it;
      with headroom near the estimate, probe upward by PROBE_GROWTH;
    - saturated: the observed completion rate is what a replica sustains ->
      move down toward it (EWMA), never up.
    """
    if per_replica_rate <= 0:
        return capacity
    if health.saturated:
        if capacity is None:
            return per_replica_rate
        blended = (1 - CAPACITY_SMOOTHING) * capacity + CAPACITY_SMOOTHING * per_replica_rate
        return min(capacity, blended)
    if capacity is None:
        return per_replica_rate / 0.8 if health.headroom else per_replica_rate
    if health.headroom and per_replica_rate > 0.6 * capacity:
        return max(capacity * PROBE_GROWTH, per_replica_rate)
    return max(capacity, per_replica_rate)


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
