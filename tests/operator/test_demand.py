"""Scale from zero: the routers' demand sizes a minReplicas: 0 deployment."""
from halyard_operator.api import parse_spec
from halyard_operator.reconcile.scaling import pod_annotations, with_demand
from halyard_operator.signals.demand import RouterDemand, demand_floor, demand_of

METRICS = ("# TYPE halyard:router_requests_held gauge\nhalyard:router_requests_held {held}\n"
           "halyard:router_requests_in_flight {flight}\nhalyard:router_last_request_timestamp_seconds {last}\n")


def spec(min_replicas=0):
    return parse_spec({"model": {"name": "m", "uri": "hf://org/repo"},
                       "scaling": {"minReplicas": min_replicas, "maxReplicas": 4}})


def test_routers_demand_is_summed_and_unreadable_bodies_skipped():
    demand = demand_of([METRICS.format(held=2, flight=1, last=100), METRICS.format(held=1, flight=0, last=250),
                        "not { prometheus"])
    assert demand == RouterDemand(held=3, in_flight=1, last_request=250)
    assert demand_of([]) is None


def test_held_or_recent_requests_keep_one_replica_and_idle_goes_to_zero():
    assert demand_floor(RouterDemand(held=1), now=1000, window_s=300) == 1
    assert demand_floor(RouterDemand(last_request=900), now=1000, window_s=300) == 1
    assert demand_floor(RouterDemand(last_request=600), now=1000, window_s=300) == 0
    assert demand_floor(RouterDemand(), now=1000, window_s=300) == 0
    assert demand_floor(None, now=1000, window_s=300) is None


def test_demand_raises_min_replicas_only_for_scale_to_zero_deployments():
    raised, cap = with_demand(spec(), 1)
    assert raised.scaling.min_replicas == 1 and cap is None
    assert with_demand(spec(), 0) == (spec(), 0)
    assert with_demand(spec(), None) == (spec(), None)
    assert with_demand(spec(min_replicas=2), 0) == (spec(min_replicas=2), None)


def test_interrupted_pods_are_marked_draining_for_the_routers():
    assert pod_annotations(-1000)["halyard.dev/draining"] == "node-interruption"
    assert "halyard.dev/draining" not in pod_annotations(5)
