"""Requests waiting in the routers' admission queues are demand the autoscaler sees."""
from __future__ import annotations

from halyard_operator.policy.autoscaler import AutoscalerState, ReplicaObservation, autoscale
from halyard_operator.policy.params import SLO, ScalingParams
from halyard_operator.signals.demand import RouterDemand, demand_of, with_router_queue
from halyard_operator.signals.types import DeploymentMetrics

PARAMS = ScalingParams(min_replicas=1, max_replicas=10, slo=SLO(ttft_p95_s=5.0, itl_p95_s=1.0))
ROUTER = ("# TYPE halyard:router_requests_queued gauge\n"
          'halyard:router_requests_queued{{tier="critical"}} 0.0\n'
          'halyard:router_requests_queued{{tier="standard"}} 0.0\n'
          'halyard:router_requests_queued{{tier="batch"}} {batch}\n'
          "halyard:router_requests_in_flight {flight}\n")


def saturated_workers(pods=2) -> DeploymentMetrics:
    """Batch-tier workers as the router keeps them: full running batches, no queue of their own."""
    return DeploymentMetrics(at=100.0, window_s=60.0, request_rate=4.0, ttft_p95_s=0.5, itl_p95_s=0.05,
                             queue=0.0, running=8.0 * pods, kv_usage=0.4, pods_total=pods)


def test_a_saturated_deployment_scales_up_on_the_routers_queue_alone():
    demand = demand_of([ROUTER.format(batch=30, flight=46), ROUTER.format(batch=10, flight=26)])
    assert demand.queued == 40
    observed = ReplicaObservation(current=2, ready=2)
    blind = autoscale(PARAMS, observed, saturated_workers(), 100.0, AutoscalerState())
    seen = autoscale(PARAMS, observed, with_router_queue(saturated_workers(), demand), 100.0, AutoscalerState())
    assert blind.desired == 2
    assert seen.desired > 2 and "queue" in seen.reason


def test_the_workers_queue_is_kept_and_unknown_router_demand_adds_nothing():
    workers = DeploymentMetrics(at=1.0, window_s=60.0, queue=3.0, pods_total=1)
    assert with_router_queue(workers, RouterDemand(queued=5)).queue == 8.0
    assert with_router_queue(workers, None) == workers
    assert with_router_queue(None, RouterDemand(queued=5)) is None
