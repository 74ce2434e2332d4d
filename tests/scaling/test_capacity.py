"""Capacity planner: floor, overprovision, spot fallback and return."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from halyard_operator.policy.capacity import SPOT_STABLE_S, CapacityState, PoolObservation, plan_pools
from halyard_operator.policy.params import SpotParams

SPOT = SpotParams(enabled=True, on_demand_floor=1, overprovision_replicas=1, fallback=True, pending_timeout_s=120)


def conditions(plan):
    return {c.type: c for c in plan.conditions}


def test_floor_on_demand_rest_on_spot_plus_overprovision():
    plan = plan_pools(6, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=6), 0.0, CapacityState())
    assert (plan.on_demand, plan.spot) == (1, 6)  # 5 spot + 1 extra
    assert conditions(plan)["SpotFallbackActive"].status == "False"


def test_spot_disabled_or_tier_without_spot_is_all_on_demand():
    off = plan_pools(4, SpotParams(enabled=False), True, PoolObservation(), PoolObservation(), 0.0, CapacityState())
    tier = plan_pools(4, SPOT, False, PoolObservation(), PoolObservation(), 0.0, CapacityState())
    assert (off.on_demand, off.spot) == (4, 0)
    assert (tier.on_demand, tier.spot) == (4, 0)
    assert "tier" in conditions(tier)["SpotFallbackActive"].message


def test_young_pending_spot_pods_do_not_trigger_fallback():
    spot = PoolObservation(ready=2, pending_ages_s=(30.0, 30.0, 30.0))
    plan = plan_pools(6, SPOT, True, PoolObservation(ready=1), spot, 0.0, CapacityState())
    assert plan.on_demand == 1


def test_stuck_spot_moves_to_on_demand_then_back_when_spot_is_ready():
    state = CapacityState()
    stuck = PoolObservation(ready=2, pending_ages_s=(200.0, 200.0, 200.0))
    plan = plan_pools(6, SPOT, True, PoolObservation(ready=1), stuck, 100.0, state)
    assert plan.on_demand == 1 + 3  # floor + (5 spot wanted - 2 ready)
    cond = conditions(plan)["SpotFallbackActive"]
    assert cond.status == "True" and cond.reason == "SpotUnavailable" and "Pending longer than 120s" in cond.message
    # a stock-out took nothing that ran: as spot comes back, the on-demand share shrinks with it
    partly = plan_pools(6, SPOT, True, PoolObservation(ready=4), PoolObservation(ready=4), 200.0, plan.state)
    assert partly.on_demand == 1 + 1 and conditions(partly)["SpotFallbackActive"].status == "True"
    back = plan_pools(6, SPOT, True, PoolObservation(ready=2), PoolObservation(ready=6), 300.0, partly.state)
    assert back.on_demand == 1 and back.state.fallback_since is None
    assert conditions(back)["SpotFallbackActive"].status == "False"


def test_after_a_reclaim_wave_replacements_stay_until_spot_has_been_stable():
    first = plan_pools(6, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=5, lost=1), 40.0, CapacityState())
    assert first.on_demand == 1 and first.state.held == 0  # one loss, absorbed by the spare: no wave
    lost = PoolObservation(ready=1, lost=4)  # a second loss a minute later: a reclaim wave
    plan = plan_pools(6, SPOT, True, PoolObservation(ready=1), lost, 100.0, first.state)
    assert plan.on_demand == 1 + 4  # floor + the 4 of 5 spot replicas lost; the spare is not covered on on-demand
    assert plan.spot == 5 + 1  # spot is still asked for the target's share and the spare
    # spot comes back, partly then fully: the replacements keep serving while spot has not been stable long
    partly = plan_pools(6, SPOT, True, PoolObservation(ready=5), PoolObservation(ready=3), 200.0, plan.state)
    assert partly.on_demand == 5 and conditions(partly)["SpotFallbackActive"].status == "True"
    ready = plan_pools(6, SPOT, True, PoolObservation(ready=5), PoolObservation(ready=6), 300.0, partly.state)
    assert ready.on_demand == 5 and "until spot has been stable" in conditions(ready)["SpotFallbackActive"].message
    # no loss for SPOT_STABLE_S: back to the floor, fallback off
    back = plan_pools(6, SPOT, True, PoolObservation(ready=5), PoolObservation(ready=6), 100.0 + SPOT_STABLE_S,
                      ready.state)
    assert back.on_demand == 1 and back.state.fallback_since is None and back.state.held == 0
    assert conditions(back)["SpotFallbackActive"].status == "False"


def test_while_spot_is_unstable_a_new_shortfall_moves_to_on_demand_without_waiting():
    lost = plan_pools(6, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=4, lost=1), 0.0,
                      CapacityState(short_at=-60.0))  # the second loss in a minute
    assert lost.on_demand == 1 + 1  # 5 spot wanted for the target, 4 Ready (the spare is spot's own hedge)
    # the deployment grows: the new spot pods are young, yet spot was just lost
    bigger = plan_pools(9, SPOT, True, PoolObservation(ready=3), PoolObservation(ready=6, pending_ages_s=(5.0,) * 3),
                        120.0, lost.state)
    assert bigger.on_demand == 1 + 2  # 8 spot wanted for the target, 6 Ready: no pendingTimeout wait
    calm = plan_pools(9, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=6, pending_ages_s=(5.0,) * 3),
                      120.0, CapacityState())
    assert calm.on_demand == 1  # a stable market waits pendingTimeout as before


def test_a_stock_out_seen_recently_makes_a_new_shortfall_move_at_once():
    stuck = PoolObservation(ready=2, pending_ages_s=(200.0,) * 3)
    first = plan_pools(6, SPOT, True, PoolObservation(ready=1), stuck, 0.0, CapacityState())
    served = plan_pools(6, SPOT, True, PoolObservation(ready=4), PoolObservation(ready=5), 60.0, first.state)
    assert served.on_demand == 1  # spot came back: no replacement held (nothing running was lost)
    grown = plan_pools(9, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=5, pending_ages_s=(5.0,) * 3),
                       120.0, served.state)
    assert grown.on_demand == 1 + 3  # young spot pods, but the pool was short minutes ago
    later = plan_pools(9, SPOT, True, PoolObservation(ready=1), PoolObservation(ready=5, pending_ages_s=(5.0,) * 3),
                       SPOT_STABLE_S + 1.0, CapacityState())
    assert later.on_demand == 1


def test_capacity_state_round_trips():
    state = CapacityState(fallback_since=10.0, unstable_at=20.0, held=3, short_at=30.0)
    assert CapacityState.from_dict(state.to_dict()) == state
    assert CapacityState.from_dict({"fallbackSince": 5.0}) == CapacityState(fallback_since=5.0)


def test_lost_spot_pods_trigger_fallback_at_once():
    lost = PoolObservation(ready=3, pending_ages_s=(0.0, 0.0), lost=2)
    plan = plan_pools(6, SPOT, True, PoolObservation(ready=1), lost, 0.0, CapacityState())
    assert plan.on_demand == 3 and "lost to interruption" in conditions(plan)["SpotFallbackActive"].message


def test_without_fallback_the_deployment_is_capacity_constrained():
    nofb = SpotParams(enabled=True, on_demand_floor=1, fallback=False, pending_timeout_s=120)
    stuck = PoolObservation(ready=0, pending_ages_s=(500.0,) * 5)
    plan = plan_pools(6, nofb, True, PoolObservation(ready=1), stuck, 0.0, CapacityState())
    assert plan.on_demand == 1
    assert conditions(plan)["CapacityConstrained"].status == "True"


def test_stuck_on_demand_is_capacity_constrained():
    plan = plan_pools(3, SpotParams(), True, PoolObservation(ready=1, pending_ages_s=(600.0, 600.0)),
                      PoolObservation(), 0.0, CapacityState())
    cond = conditions(plan)["CapacityConstrained"]
    assert cond.status == "True" and cond.reason == "OnDemandPending"


@settings(max_examples=300, deadline=None)
@given(desired=st.integers(0, 50), floor=st.integers(0, 10), extra=st.integers(0, 5), fallback=st.booleans(),
       od_ready=st.integers(0, 50), spot_ready=st.integers(0, 60), ages=st.lists(st.floats(0, 1000), max_size=10),
       lost=st.integers(0, 5), since=st.one_of(st.none(), st.floats(0, 100)))
def test_invariants(desired, floor, extra, fallback, od_ready, spot_ready, ages, lost, since):
    spot = SpotParams(enabled=True, on_demand_floor=floor, overprovision_replicas=extra, fallback=fallback)
    plan = plan_pools(desired, spot, True, PoolObservation(ready=od_ready),
                      PoolObservation(ready=spot_ready, pending_ages_s=tuple(ages), lost=lost), 200.0,
                      CapacityState(fallback_since=since))
    assert plan.on_demand >= min(floor, desired)
    assert plan.on_demand + plan.spot >= desired
    assert plan.on_demand <= desired  # fallback never buys more on-demand than the target (no reclaim wave here)
