"""How the learned per-replica capacity probes upward and where it stops: latency room,
the engine's prefill budget, a queue that costs no latency, and a draining backlog."""
from __future__ import annotations

import pytest

from halyard_operator.policy.autoscaler import AutoscalerState, ReplicaObservation, autoscale
from halyard_operator.policy.estimators import CapacityEstimate, Health, update_capacity
from halyard_operator.policy.params import SLO, ScalingParams
from halyard_operator.signals.types import DeploymentMetrics


def _health(latency=0.25, queue=0.0, ttft=None):
    return Health(ttft_ratio=latency if ttft is None else ttft, itl_ratio=latency, queue_ratio=queue, kv_ratio=0.3)


def _evaluations(est, rate, health, n=20, budget=None):
    for k in range(n):
        est = update_capacity(est, rate, health, float(k), budget)
    return est


# Spare spot replicas share the load, so each replica carries ~3/4 of what the
# plan gives it; the old ceiling (1.3 x the best rate seen) stalled there.
STALLED = CapacityEstimate(rps=9_750.0, best_healthy=7_500.0, saturated_at=None, unit="tokens")


def test_replicas_far_inside_their_latency_targets_let_the_estimate_climb_past_what_they_carry():
    after = _evaluations(STALLED, 7_500.0, _health(latency=0.25))
    assert 12_000 < after.rps <= 2 * 7_500  # at most twice the rate carried now


def test_the_prefill_budget_stops_the_probe_short_of_the_engine_s_cliff():
    # a third of the budget in use: with the prefill chunk half of a full step's time,
    # the budget fills at 7,500 x (0.5 / (1/3) + 0.5) = 15,000 tokens/s
    after = _evaluations(STALLED, 7_500.0, _health(latency=0.25), n=60, budget=1 / 3)
    assert after.rps == pytest.approx(0.9 * 15_000)
    near_cliff = _evaluations(STALLED, 7_500.0, _health(latency=0.25), n=60, budget=0.9)
    assert near_cliff.rps < 7_500.0 * (0.5 / 0.9 + 0.5)  # below where the budget fills


def test_a_reach_granted_at_a_light_load_decays_when_the_latency_room_goes():
    est = CapacityEstimate(rps=14_000.0, best_healthy=7_500.0, saturated_at=None, unit="tokens")
    once = update_capacity(est, 7_500.0, _health(latency=0.45), 0.0)
    assert once.rps == pytest.approx(14_000.0 * 0.98)
    settled = _evaluations(est, 7_500.0, _health(latency=0.45), n=60)
    assert settled.rps == pytest.approx(1.3 * 7_500.0)  # back to the ceiling over the best healthy rate


def test_a_short_queue_that_costs_no_latency_holds_the_estimate():
    est = CapacityEstimate(rps=10_000.0, best_healthy=9_000.0, saturated_at=None, unit="tokens")
    held = update_capacity(est, 8_000.0, _health(latency=0.2, queue=0.6), 5.0)
    assert held.rps == 10_000.0 and held.saturated_at is None
    delayed = update_capacity(est, 8_000.0, _health(latency=0.2, queue=0.6, ttft=0.6), 5.0)
    assert delayed.rps == pytest.approx(0.9 * 8_000.0) and delayed.saturated_at == 5.0


PARAMS = ScalingParams(min_replicas=1, max_replicas=100, slo=SLO(ttft_p95_s=0.5, itl_p95_s=0.05))


def _backlog(queue_before, queue_now):
    state = AutoscalerState(capacity=CapacityEstimate(rps=10.0, best_healthy=10.0, unit="requests"),
                            queue_seen=(0.0, queue_before))
    m = DeploymentMetrics(at=15.0, window_s=60.0, request_rate=100.0, ttft_p95_s=1.5, itl_p95_s=0.03,
                          queue=queue_now, running=100.0, kv_usage=0.5, pods_total=10)
    return autoscale(PARAMS, ReplicaObservation(current=10, ready=10), m, 15.0, state)


def test_a_draining_backlog_is_not_doubled_on_its_lagging_ttft():
    # 10 replicas clear 1,200 waiting requests at 60/s: gone in 20 s; the window's TTFT p95 still shows the wait
    draining = _backlog(2_100.0, 1_200.0)
    assert draining.desired < 20 and "TTFT" not in draining.reason
    growing = _backlog(300.0, 1_200.0)  # the same queue, growing: more replicas at once
    assert growing.desired >= 20
