"""Tier arbiter: scarce GPUs go to critical, then standard, then batch."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from halyard_operator.policy.tiers import DEFAULT_TIERS, Demand, arbitrate


def test_plenty_grants_everyone():
    grants = arbitrate((Demand("a", "critical", 1, 1, 4, 4), Demand("b", "batch", 1, 0, 3, 3)), 100)
    assert grants["a"].granted == 4 and grants["b"].granted == 3
    assert grants["b"].condition.status == "False"


def test_scarcity_shrinks_batch_first_and_says_why():
    demands = (Demand("team-a/chat", "critical", 1, 2, 6, 4), Demand("team-b/bot", "standard", 1, 1, 4, 4),
               Demand("team-c/batch", "batch", 1, 0, 4, 4))
    grants = arbitrate(demands, 10)
    assert grants["team-a/chat"].granted == 6
    assert grants["team-b/bot"].granted == 4  # next in line once critical has all it wants
    assert grants["team-c/batch"].granted == 0
    cond = grants["team-c/batch"].condition
    assert cond.status == "True" and cond.reason == "GPUsHeldByHigherTiers"
    assert "team-a/chat" in cond.message and "wants 4" in cond.message


def test_min_replicas_of_every_tier_come_before_extra_replicas():
    demands = (Demand("crit", "critical", 2, 1, 10, 0), Demand("std", "standard", 2, 1, 10, 0))
    grants = arbitrate(demands, 8)
    assert grants["std"].granted >= 1 and grants["crit"].granted == 3


def test_equal_tier_shares_water_fill():
    demands = (Demand("x", "standard", 1, 0, 10, 0), Demand("y", "standard", 1, 0, 10, 0))
    grants = arbitrate(demands, 9)
    assert sorted(g.granted for g in grants.values()) == [4, 5]


def test_operator_config_tiers_drive_the_arbiter():
    from halyard_operator.config import TierConfig

    demands = (Demand("a", "critical", 1, 0, 4, 4), Demand("b", "batch", 1, 0, 4, 0))
    # a configuration where batch outranks critical
    flipped = {"critical": TierConfig("halyard-critical", shedding_order=0, preemptible=True),
               "standard": DEFAULT_TIERS["standard"],
               "batch": TierConfig("halyard-batch", shedding_order=9, preemptible=False)}
    grants = arbitrate(demands, 4, flipped)
    assert grants["b"].granted == 4 and grants["a"].granted == 0


def _fleets(max_size: int):
    """Random fleets: rows of (tier, GPUs per replica, minReplicas, desired, running)."""
    return st.lists(st.tuples(st.sampled_from(["critical", "standard", "batch"]), st.integers(1, 8),
                              st.integers(0, 3), st.integers(0, 10), st.integers(0, 10)), min_size=1, max_size=max_size)


def _demands(rows) -> tuple[Demand, ...]:
    return tuple(Demand(f"d{i:02d}", tier, g, min(lo, want), want, run)
                 for i, (tier, g, lo, want, run) in enumerate(rows))


@settings(max_examples=200, deadline=None)
@given(_fleets(6), st.integers(0, 80))
def test_grants_fit_the_budget_and_never_exceed_desire(rows, gpus):
    demands = _demands(rows)
    grants = arbitrate(demands, gpus)
    kept = sum(min(d.running, d.desired) * d.gpus_per_replica for d in demands
               if not DEFAULT_TIERS[d.tier].preemptible)
    used = sum(grants[d.name].granted * d.gpus_per_replica for d in demands)
    assert used <= max(gpus, kept)
    assert all(grants[d.name].granted <= d.desired for d in demands)


def _one_at_a_time(demands, gpus):
    """The arbiter's rule written plainly: non-preemptible running pods keep their GPUs; then
    per goal (minReplicas, then desired) and tier, one replica at a time to the smallest grant."""
    tiers, grants, budget = DEFAULT_TIERS, {d.name: 0 for d in demands}, gpus
    for d in demands:
        if not tiers[d.tier].preemptible:
            grants[d.name] = min(d.running, d.desired)
            budget -= grants[d.name] * d.gpus_per_replica
    levels = sorted({tiers[d.tier].shedding_order for d in demands}, reverse=True)
    for goal in (lambda d: d.min_replicas, lambda d: d.desired):
        for level in levels:
            budget = max(budget, 0)
            group = [d for d in demands if tiers[d.tier].shedding_order == level]
            while open_ := [d for d in group if grants[d.name] < goal(d) and d.gpus_per_replica <= budget]:
                d = min(open_, key=lambda d: (grants[d.name] * d.gpus_per_replica, d.name))
                grants[d.name] += 1
                budget -= d.gpus_per_replica
    return grants


@settings(max_examples=300, deadline=None)
@given(_fleets(12), st.integers(0, 120))
def test_the_arbiter_grants_exactly_what_one_replica_at_a_time_would(rows, gpus):
    demands = _demands(rows)
    grants = arbitrate(demands, gpus)
    assert {name: g.granted for name, g in grants.items()} == _one_at_a_time(demands, gpus)


def test_a_held_back_deployment_names_a_few_of_the_higher_tiers_holding_gpus():
    demands = tuple(Demand(f"critical-{i:02d}", "critical", 1, 1, 1, 1) for i in range(12)) + (
        Demand("batch", "batch", 1, 0, 2, 0),)
    msg = arbitrate(demands, 12)["batch"].condition.message
    assert "critical-00, critical-01, critical-02, critical-03, critical-04 and 7 more" in msg
