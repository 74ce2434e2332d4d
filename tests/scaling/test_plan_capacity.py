"""The reconcile entry point: spec + pods + nodes + metrics + state -> pool counts, conditions, drains."""
from __future__ import annotations

from halyard_operator.api import parse_spec
from halyard_operator.config import DEFAULT_TIERS
from halyard_operator.names import STATE_ANNOTATION
from halyard_operator.observe import NodeInfo, ObservedPod
from halyard_operator.policy import ScalingState, plan_capacity
from halyard_operator.signals.types import DeploymentMetrics

SPEC = parse_spec({
    "model": {"name": "chat-8b", "uri": "hf://org/chat"},
    "scaling": {"minReplicas": 2, "maxReplicas": 10, "slo": {"ttftP95": "500ms", "itlP95": "50ms"}},
    "capacity": {"spot": {"enabled": True, "onDemandFloor": 1, "overprovision": 1, "pendingTimeout": "2m"}},
})
NODES = {"od-1": NodeInfo("od-1"), "spot-1": NodeInfo("spot-1"), "spot-2": NodeInfo("spot-2")}


def pods(spot_ready=2, spot_nodes=("spot-1", "spot-2")):
    out = [ObservedPod("chat-8b-ondemand-a", "ondemand", "od-1", True, 900.0)]
    for i in range(3):
        out.append(ObservedPod(f"chat-8b-spot-{i}", "spot", spot_nodes[i % len(spot_nodes)], i < spot_ready, 900.0))
    return tuple(out)


def metrics(ttft=0.1, at=0.0):
    return DeploymentMetrics(at=at, window_s=60, request_rate=20, ttft_p95_s=ttft, itl_p95_s=0.02, pods_total=3)


def conds(decision):
    return {c.type: c for c in decision.conditions}


def test_slo_breach_scales_and_splits_pools():
    state = ScalingState(desired=3)
    d = plan_capacity("team-a/chat-8b", SPEC, DEFAULT_TIERS["standard"], True, pods(spot_ready=2), NODES,
                      metrics(ttft=0.9), 100.0, state)
    assert d.desired == 6  # 3 ready * 2
    assert (d.counts.on_demand, d.counts.spot) == (1, 6)  # floor 1; 5 spot + 1 overprovision
    assert conds(d)["SLOAtRisk"].status == "True"
    assert ("Normal", "Scaled", "Scaled team-a/chat-8b 3 -> 6: TTFT p95 900ms > 85% of 500ms") in d.events
    assert d.metrics_status["ttftP95"] == "900ms"


def test_interrupted_spot_node_drains_its_pod_and_falls_back_to_on_demand():
    nodes = {**NODES, "spot-1": NodeInfo("spot-1", taint_keys=("aws-node-termination-handler/spot-itn",))}
    state = ScalingState(desired=3)
    d = plan_capacity("team-a/chat-8b", SPEC, DEFAULT_TIERS["standard"], True, pods(spot_ready=3), nodes,
                      metrics(), 100.0, state)
    assert set(d.drain) == {"chat-8b-spot-0", "chat-8b-spot-2"}  # both pods on spot-1
    assert d.deletion_costs["chat-8b-spot-0"] < min(v for k, v in d.deletion_costs.items() if k not in d.drain)
    assert conds(d)["SpotFallbackActive"].status == "True"
    assert d.counts.on_demand > 1
    assert any(e[1] == "Draining" for e in d.events)


def test_state_survives_a_restart_through_the_annotation():
    d = plan_capacity("team-a/chat-8b", SPEC, DEFAULT_TIERS["standard"], True, pods(), NODES, metrics(),
                      100.0, ScalingState())
    restored = ScalingState.from_json(d.state.to_json())
    assert restored == d.state
    assert ScalingState.from_json("{not json") == ScalingState()
    assert STATE_ANNOTATION == "halyard.dev/scaling-state"


def test_tier_without_spot_and_missing_spot_pool_place_everything_on_demand():
    from halyard_operator.config import TierConfig

    no_spot_tier = TierConfig("halyard-critical", spot_allowed=False, preemptible=False, shedding_order=2)
    for tier, available in ((no_spot_tier, True), (DEFAULT_TIERS["standard"], False)):
        d = plan_capacity("team-a/chat-8b", SPEC, tier, available, pods(), NODES, metrics(), 0.0,
                          ScalingState(desired=4))
        assert d.counts.spot == 0 and d.counts.on_demand == 4
