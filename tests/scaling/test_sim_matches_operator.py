"""The simulator decides with the operator's own function: for the same
observations, `HalyardController.tick` (simulator) and `plan_capacity` (what
reconcile calls, from pods and nodes) give the same pool counts, serving size,
conditions and remembered state, tick after tick."""
from __future__ import annotations

from halyard.sim.controllers import HalyardController, LaneView
from halyard.sim.model import DEFAULT_PROFILE, SimDeployment, load_profiles
from halyard_operator.api import parse_spec
from halyard_operator.config import DEFAULT_TIERS
from halyard_operator.observe import NodeInfo, ObservedPod
from halyard_operator.policy import ScalingState, plan_capacity
from halyard_operator.policy.params import params_from_spec
from halyard_operator.signals.types import DeploymentMetrics

NAME = "team-a/chat-8b"
SPEC = parse_spec({
    "model": {"name": "chat-8b", "uri": "hf://o/r"},
    "scaling": {"minReplicas": 2, "maxReplicas": 30, "targetQueuePerReplica": 2,
                "slo": {"ttftP95": "500ms", "itlP95": "50ms"},
                "behavior": {"scaleDown": {"stabilizationWindow": "60s"}}},
    "capacity": {"spot": {"enabled": True, "onDemandFloor": 2, "overprovision": 1, "pendingTimeout": "2m"}},
})
NOTICE = NodeInfo("spot-gone", taint_keys=("aws-node-termination-handler/spot-itn",))

# (time, per pool (ready, starting, stuck), stuck age, spot pods lost to a notice this tick, metrics)
TICKS = [
    (0.0, ((2, 0, 0), (1, 0, 0)), 0.0, 0, dict(request_rate=6.0, queue=0.0, ttft=0.2)),
    (15.0, ((2, 0, 0), (1, 0, 0)), 0.0, 0, dict(request_rate=9.0, queue=14.0, ttft=0.9)),
    (30.0, ((2, 0, 0), (1, 2, 3)), 30.0, 0, dict(request_rate=9.5, queue=16.0, ttft=1.1)),
    (45.0, ((2, 1, 0), (1, 1, 3)), 150.0, 0, dict(request_rate=10.0, queue=12.0, ttft=0.8)),
    (60.0, ((3, 2, 0), (0, 1, 3)), 165.0, 1, dict(request_rate=10.0, queue=8.0, ttft=0.7)),
    (75.0, ((5, 0, 0), (3, 0, 0)), 0.0, 0, dict(request_rate=10.0, queue=0.0, ttft=0.3)),
    (200.0, ((5, 0, 0), (4, 0, 0)), 0.0, 0, dict(request_rate=3.0, queue=0.0, ttft=0.1)),
]


def metrics(at, ready, request_rate, queue, ttft):
    return DeploymentMetrics(at=at, window_s=60.0, request_rate=request_rate, ttft_p95_s=ttft, itl_p95_s=0.02,
                             queue=queue, running=4.0 * ready, kv_usage=0.3, pods_total=ready)


def pods_for(tick, pools, stuck_age, lost):
    """Pods as observe reads them: Ready, starting (scheduled, loading), stuck (unscheduled, old),
    plus `lost` Ready spot pods on a node with an interruption notice."""
    out = []
    for pool, (ready, starting, stuck) in zip(("ondemand", "spot"), pools):
        out += [ObservedPod(f"{pool}-r{i}", pool, f"{pool}-node", True, 900.0) for i in range(ready)]
        out += [ObservedPod(f"{pool}-s{i}-{tick}", pool, f"{pool}-node", False, 5.0) for i in range(starting)]
        out += [ObservedPod(f"{pool}-p{i}", pool, None, False, stuck_age, scheduled=False) for i in range(stuck)]
    out += [ObservedPod(f"spot-lost{i}-{tick}", "spot", NOTICE.name, True, 900.0) for i in range(lost)]
    return tuple(out)


def test_simulator_and_reconcile_make_the_same_decisions():
    dep = SimDeployment(params=params_from_spec(NAME, SPEC), profile=load_profiles(None)[DEFAULT_PROFILE])
    sim = HalyardController([dep], has_spot=True)
    state = ScalingState()
    nodes = {NOTICE.name: NOTICE, "ondemand-node": NodeInfo("ondemand-node"), "spot-node": NodeInfo("spot-node")}
    changed = set()
    for tick, (t, pools, stuck_age, lost, m) in enumerate(TICKS):
        ready = pools[0][0] + pools[1][0]
        seen = metrics(t, ready, **m)
        view = LaneView(metrics=seen, ready=(pools[0][0], pools[1][0]), starting=(pools[0][1], pools[1][1]),
                        stuck=(pools[0][2], pools[1][2]), stuck_age_s=(stuck_age, stuck_age), lost=(0, lost))
        sim_counts = sim.tick(t, 0, view)
        op = plan_capacity(NAME, SPEC, DEFAULT_TIERS["standard"], True, pods_for(tick, pools, stuck_age, lost),
                           nodes, seen, t, state)
        assert (op.counts.on_demand, op.counts.spot) == sim_counts, f"tick {tick} at t={t}"
        assert op.desired == sim.desired[0]
        assert op.state.autoscaler == sim.scale_state[0] and op.state.capacity == sim.cap_state[0]
        changed.add((op.desired, op.counts.on_demand, op.counts.spot))
        state = op.state
    # The scenario exercises scale-up, spot fallback and scale-down, not one steady state.
    assert len(changed) >= 4
