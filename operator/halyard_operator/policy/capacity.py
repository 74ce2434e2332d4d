"""Spot-aware capacity planner: desired replicas -> (on-demand, spot) with fallback.

Rule (SpotHedge-style, pure):
  floor      = min(onDemandFloor, desired)              always on-demand
  spot_base  = desired - floor                          the spot share
  spot       = spot_base + overprovision(spot_base)     extra spot absorbs preemptions
  on_demand  = floor + max(0, spot_base - ready_spot)   while fallback is active
             = floor                                    otherwise
Fallback turns on when a spot pod stays Pending beyond `pendingTimeout` or
spot pods are lost (interrupted/preempted), and off once `ready_spot >=
spot_base` again: the share moves to on-demand and then back.

A pool known to be short (spot pods lost or stuck Pending within the last
SPOT_STABLE_S) gets no new `pendingTimeout` wait: any spot shortfall moves to
on-demand at once. Spot re-entry waits for a stable market: once spot pods
are lost to an interruption while the pool is known short (a reclaim wave, or
a loss spot cannot refill; not one node's bad luck), the on-demand
replacements made are kept even when spot pods become Ready again, so the
next reclaim finds them serving instead of starting cold. They are removed
once spot has had no such loss for SPOT_STABLE_S. Spare spot replicas
(overprovision) that spot cannot refill get no on-demand cover: they hedge
spot's next loss at spot's price, and covering them at on-demand's price
for the hours a reclaim wave lasts cost more than the hedge saves (the
target's lost share is covered either way). (A stock-out alone, spot pods stuck
Pending, takes nothing that runs: its replacements follow spot back as before.)
"""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import Condition
from halyard_operator.names import CAPACITY_CONSTRAINED, SPOT_FALLBACK_ACTIVE, Reason
from halyard_operator.policy.params import SpotParams

SPOT_STABLE_S = 900.0  # this long without a loss or stuck spot pod: spot is trusted again


@dataclass(frozen=True)
class PoolObservation:
    """One capacity type's pods. `pending_ages_s`: age of each Pending pod (s).

    `lost`: pods of this pool on interrupted nodes or preempted since the last
    evaluation (already excluded from `ready`).
    """

    ready: int = 0
    pending_ages_s: tuple[float, ...] = ()
    lost: int = 0

    @property
    def pending(self) -> int:
        return len(self.pending_ages_s)

    def stuck(self, timeout_s: float) -> int:
        return sum(1 for age in self.pending_ages_s if age >= timeout_s)


@dataclass(frozen=True)
class CapacityState:
    """Remembered between evaluations: whether fallback is on, and since when;
    `unstable_at`: the last loss to an interruption while the pool was known short;
    `short_at`: the last time spot pods were lost or stuck Pending;
    `held`: on-demand replacements kept until spot is stable again (>= 0)."""

    fallback_since: float | None = None
    unstable_at: float | None = None
    held: int = 0
    short_at: float | None = None

    def to_dict(self) -> dict:
        return {"fallbackSince": self.fallback_since, "unstableAt": self.unstable_at, "held": self.held,
                "shortAt": self.short_at}

    @classmethod
    def from_dict(cls, raw: dict | None) -> "CapacityState":
        raw = raw or {}
        return cls(fallback_since=raw.get("fallbackSince"), unstable_at=raw.get("unstableAt"),
                   held=int(raw.get("held") or 0), short_at=raw.get("shortAt"))


def _recent(at: float | None, now: float) -> bool:
    return at is not None and now - at < SPOT_STABLE_S


@dataclass(frozen=True)
class CapacityPlan:
    """Replicas per capacity type. Invariants: on_demand >= min(floor, desired);
    on_demand + spot >= desired; spot == 0 when spot is disabled or not allowed."""

    on_demand: int
    spot: int
    conditions: tuple[Condition, ...]
    state: CapacityState


def _fallback_trigger(spot: SpotParams, obs: PoolObservation) -> str | None:
    stuck = obs.stuck(spot.pending_timeout_s)
    if stuck:
        return f"{stuck} spot pod(s) Pending longer than {spot.pending_timeout_s:g}s"
    if obs.lost:
        return f"{obs.lost} spot pod(s) lost to interruption"
    return None


def _constrained(on_demand_obs: PoolObservation, spot: SpotParams) -> Condition:
    stuck = on_demand_obs.stuck(spot.pending_timeout_s)
    if stuck:
        return Condition.of(CAPACITY_CONSTRAINED, True, Reason.ON_DEMAND_PENDING,
                         f"{stuck} on-demand pod(s) Pending longer than {spot.pending_timeout_s:g}s")
    return Condition.of(CAPACITY_CONSTRAINED, False, Reason.CAPACITY_AVAILABLE, "all requested pods are scheduling normally")


def plan_pools(
    desired: int,
    spot: SpotParams,
    spot_allowed: bool,
    on_demand_obs: PoolObservation,
    spot_obs: PoolObservation,
    now: float,
    state: CapacityState,
) -> CapacityPlan:
    """Split `desired` replicas between on-demand and spot (see module docstring)."""
    if not spot.enabled or not spot_allowed:
        why = "spot disabled" if not spot.enabled else "tier does not allow spot"
        off = Condition.of(SPOT_FALLBACK_ACTIVE, False, Reason.SPOT_NOT_USED, why)
        return CapacityPlan(desired, 0, (off, _constrained(on_demand_obs, spot)), CapacityState())
    floor = min(spot.on_demand_floor, desired)
    spot_base = desired - floor
    spot_total = spot_base + (spot.extra_spot(spot_base) if spot_base else 0)
    trigger = _fallback_trigger(spot, spot_obs)
    wave = spot_obs.lost and (_recent(state.short_at, now) or _recent(state.unstable_at, now))
    unstable_at = now if wave else state.unstable_at
    short_at = now if trigger is not None else state.short_at
    unstable, short = _recent(unstable_at, now), _recent(short_at, now)
    shortfall = max(0, spot_base - spot_obs.ready)  # the spares are not covered: see the module doc
    active = spot.fallback and shortfall > 0 and (
        trigger is not None or state.fallback_since is not None or short)
    moved = shortfall if active else 0
    held = min(max(moved, state.held), spot_total) if spot.fallback and unstable else 0
    on_demand = floor + max(moved, held)
    since = (state.fallback_since if state.fallback_since is not None else now) if active else None
    if active:
        fallback = Condition.of(SPOT_FALLBACK_ACTIVE, True, Reason.SPOT_UNAVAILABLE,
                             f"{shortfall} replica(s) moved to on-demand: {trigger or 'spot not Ready yet'}")
    elif held:
        fallback = Condition.of(SPOT_FALLBACK_ACTIVE, True, Reason.SPOT_UNAVAILABLE,
                             f"{held} on-demand replica(s) kept until spot has been stable for {SPOT_STABLE_S:g}s")
    elif trigger and not spot.fallback:
        fallback = Condition.of(SPOT_FALLBACK_ACTIVE, False, Reason.FALLBACK_DISABLED,
                             f"{trigger}; spot.fallback is false, so no on-demand replacement")
    else:
        fallback = Condition.of(SPOT_FALLBACK_ACTIVE, False, Reason.SPOT_READY, f"{spot_obs.ready}/{spot_base} spot replica(s) Ready")
    constrained = _constrained(on_demand_obs, spot)
    if not spot.fallback and trigger and shortfall:
        constrained = Condition.of(CAPACITY_CONSTRAINED, True, Reason.SPOT_UNAVAILABLE, trigger)
    return CapacityPlan(on_demand, spot_total, (fallback, constrained),
                        CapacityState(fallback_since=since, unstable_at=unstable_at if unstable else None, held=held,
                                      short_at=short_at if short else None))
