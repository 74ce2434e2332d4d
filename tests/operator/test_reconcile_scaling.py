"""The reconcile's scaling step: live pods, nodes and metrics -> pool sizes,
drains, events and status (pure `decide`, plus `apply_decision` against a
recording client)."""
from __future__ import annotations

import asyncio

from halyard_operator.api import parse_spec
from halyard_operator.builders.meta import Owner
from halyard_operator.config import OperatorConfig
from halyard_operator.names import DELETION_COST_ANNOTATION, DEPLOYMENT_LABEL, POOL_LABEL, STATE_ANNOTATION
from halyard_operator.policy import ScalingState
from halyard_operator.reconcile.fleet import FleetBook, foreign_gpus, usable_gpu_nodes
from halyard_operator.observe import read_gpu_claims, read_node, read_observed
from halyard_operator.reconcile.scaling import ScalingInputs, apply_decision, decide
from halyard_operator.reconcile.status import current_conditions, status_fields
from halyard_operator.signals.types import DeploymentMetrics

CONFIG = OperatorConfig()
NOW = 1_000_000.0
CREATED = "1970-01-12T13:40:00Z"  # 600 s before NOW


def spec(**over):
    return parse_spec({"model": {"name": "m", "uri": "hf://o/r"}, **over})


def scaled(**over):
    return spec(scaling={"minReplicas": 1, "maxReplicas": 4, "targetQueuePerReplica": 2,
                         "slo": {"ttftP95": "500ms"}}, **over)


def node(name, pool, gpus=2, product="H100", taints=()):
    return {"metadata": {"name": name, "labels": {"eks.amazonaws.com/capacityType": pool,
                                                  "nvidia.com/gpu.product": product}},
            "spec": {"taints": [{"key": k, "effect": "NoSchedule"} for k in taints]},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}}}


def pod(name, owner, pool, node_name, ready=True, gpus=1):
    return {"metadata": {"name": name, "namespace": "team-a", "creationTimestamp": CREATED,
                         "labels": {DEPLOYMENT_LABEL: owner, POOL_LABEL: pool}},
            "spec": {"nodeName": node_name,
                     "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def busy(queue=0.0, ttft=0.2, pods=1):
    return DeploymentMetrics(at=NOW, window_s=60.0, request_rate=2.0, ttft_p95_s=ttft, queue=queue,
                             running=4.0, pods_total=pods)


def inputs(metrics=None, state=ScalingState(), gpu_claims=()):
    return ScalingInputs(metrics=metrics, loads={}, now=NOW, state=state, gpu_claims=gpu_claims)


def Observed(nodes=(), pods=()):
    return read_observed(NOW, nodes=nodes, pods=pods)


def test_autoscaled_deployment_without_metrics_holds_min_and_says_why():
    owner = Owner("chat", "team-a", "u")
    s = scaled()
    obs = Observed(nodes=(node("od", "ON_DEMAND"),), pods=(pod("chat-1", "chat", "ondemand", "od"),))
    d = decide(owner, s, CONFIG, False, obs, inputs(), FleetBook())
    assert d.desired == 1 and d.counts.on_demand == 1
    conds = {c.type: c for c in current_conditions(s, d.counts, d.desired, {}, owner, [], d)}
    assert conds["ScalingActive"].status == "False" and conds["ScalingActive"].reason == "MetricsUnavailable"
    assert "metrics" not in status_fields(owner, 1, {}, s, d)


def test_queue_scales_up_with_an_event_and_live_metrics_in_status():
    owner = Owner("chat", "team-a", "u")
    s = scaled()
    obs = Observed(nodes=(node("od", "ON_DEMAND", gpus=8),), pods=(pod("chat-1", "chat", "ondemand", "od"),))
    d = decide(owner, s, CONFIG, False, obs, inputs(busy(queue=8.0, ttft=0.9)), FleetBook())
    assert d.desired == 2 and d.counts.on_demand == 2  # latency and queue signals at most double
    assert [e[1] for e in d.events] == ["Scaled"]
    assert d.events[0][2].startswith("Scaled team-a/chat 1 -> 2")
    conds = {c.type: c for c in current_conditions(s, d.counts, d.desired, {}, owner, [], d)}
    assert conds["ScalingActive"].status == "True" and conds["SLOAtRisk"].status == "True"
    fields = status_fields(owner, 1, {}, s, d)
    assert fields["desiredReplicas"] == 2 and fields["metrics"]["ttftP95"] == "900ms"
    assert ScalingState.from_json(d.state.to_json()).desired == 2


def test_interrupted_spot_pod_is_replaced_on_demand_and_drained():
    owner = Owner("chat", "team-a", "u")
    s = spec(replicas=2, capacity={"spot": {"enabled": True, "onDemandFloor": 1}})
    nodes = (node("od", "ON_DEMAND"), node("sp", "SPOT", taints=("halyard.dev/interruption",)))
    pods = (pod("chat-od", "chat", "ondemand", "od"), pod("chat-sp", "chat", "spot", "sp"))
    d = decide(owner, s, CONFIG, True, Observed(nodes=nodes, pods=pods), inputs(), FleetBook())
    assert d.drain == ("chat-sp",)
    assert d.counts.on_demand == 2 and d.counts.spot == 1  # replacement on on-demand, spot asked again
    assert d.deletion_costs["chat-sp"] < d.deletion_costs["chat-od"]
    assert any(e[1] == "Draining" and "chat-sp" in e[2] for e in d.events)
    conds = {c.type: c for c in d.conditions}
    assert conds["SpotFallbackActive"].status == "True"
    assert "SLOAtRisk" not in {c.type for c in current_conditions(s, d.counts, 2, {}, owner, [], d)}


def test_scarce_gpus_go_to_the_critical_tier_first():
    book = FleetBook()
    nodes = (node("l4", "ON_DEMAND", gpus=2, product="L4"),)
    batch_pods = (pod("b-1", "b", "ondemand", "l4"), pod("b-2", "b", "ondemand", "l4"))
    batch = spec(replicas=2, tier="batch", resources={"gpus": 1, "gpuProduct": "L4"})
    crit = spec(replicas=1, tier="critical", resources={"gpus": 1, "gpuProduct": "L4"})
    first = decide(Owner("b", "team-a", "u1"), batch, CONFIG, False, Observed(nodes=nodes, pods=batch_pods),
                   inputs(), book)
    assert first.desired == 2  # alone: everything it asks for
    decide(Owner("c", "team-a", "u2"), crit, CONFIG, False, Observed(nodes=nodes), inputs(), book)
    again = decide(Owner("b", "team-a", "u1"), batch, CONFIG, False, Observed(nodes=nodes, pods=batch_pods),
                   inputs(state=first.state), book)
    assert again.desired == 1 and again.counts.on_demand == 1 and again.wanted == 2
    held = {c.type: c for c in again.conditions}["CapacityConstrained"]
    assert held.status == "True" and held.reason == "GPUsHeldByHigherTiers" and "team-a/c" in held.message


def test_a_quiet_critical_deployment_keeps_its_gpus_until_it_is_deleted():
    """Event-driven reconciles can be minutes apart: the book keeps a demand as long as
    its deployment exists (not for a fixed time), and drops it once it is gone (the delete
    handler forgets it at once; the sweep, at most `sweep_s` later, catches a missed delete)."""
    book, live = FleetBook(ttl_s=120.0), {"team-a/b", "team-a/c"}
    nodes = (node("l4", "ON_DEMAND", gpus=2, product="L4"),)
    batch_pods = (pod("b-1", "b", "ondemand", "l4"), pod("b-2", "b", "ondemand", "l4"))
    batch = spec(replicas=2, tier="batch", resources={"gpus": 1, "gpuProduct": "L4"})
    crit = spec(replicas=1, tier="critical", resources={"gpus": 1, "gpuProduct": "L4"})

    def at(now, alive):
        return ScalingInputs(metrics=None, loads={}, now=now, state=ScalingState(), gpu_claims=(), alive=alive)

    decide(Owner("c", "team-a", "u2"), crit, CONFIG, False, Observed(nodes=nodes), at(NOW, live.__contains__), book)
    book.entries["team-a/c"] = (*book.entries["team-a/c"][:2], book.entries["team-a/c"][2] - 600)  # 10 min ago
    later = decide(Owner("b", "team-a", "u1"), batch, CONFIG, False, Observed(nodes=nodes, pods=batch_pods),
                   at(NOW + 600, live.__contains__), book)
    assert later.desired == 1  # the critical deployment still holds its GPU
    live.discard("team-a/c")
    gone = decide(Owner("b", "team-a", "u1"), batch, CONFIG, False, Observed(nodes=nodes, pods=batch_pods),
                  at(NOW + 600 + book.sweep_s, live.__contains__), book)
    assert gone.desired == 2 and "team-a/c" not in book.entries


def test_gpu_budget_skips_interrupted_cordoned_and_foreign_use():
    nodes = [node("a", "ON_DEMAND"), node("b", "SPOT", taints=("karpenter.sh/disrupted",)),
             {**node("c", "ON_DEMAND"), "spec": {"unschedulable": True}}, node("d", "ON_DEMAND", product="L4")]
    nodes = [read_node(n) for n in nodes]
    assert usable_gpu_nodes(nodes, "H100") == {"a": 2}
    assert usable_gpu_nodes(nodes, None) == {"a": 2, "d": 2}
    other = pod("x", "x", "ondemand", "a")
    del other["metadata"]["labels"][DEPLOYMENT_LABEL]
    assert foreign_gpus(read_gpu_claims([other, pod("w", "w", "ondemand", "a")]), ["a"]) == 1


class Recorder:
    def __init__(self):
        self.calls = []

    async def patch(self, kind, name, ns, body):
        self.calls.append(("patch", kind, name, body))
        return True

    async def delete(self, kind, name, ns=None):
        self.calls.append(("delete", kind, name))
        return True


def test_apply_decision_drains_annotates_and_skips_unchanged_writes():
    owner = Owner("chat", "team-a", "u")
    s = spec(replicas=2, capacity={"spot": {"enabled": True, "onDemandFloor": 1}})
    nodes = (node("od", "ON_DEMAND"), node("sp", "SPOT", taints=("halyard.dev/interruption",)))
    pods = (pod("chat-od", "chat", "ondemand", "od"), pod("chat-sp", "chat", "spot", "sp"))
    obs = Observed(nodes=nodes, pods=pods)
    d = decide(owner, s, CONFIG, True, obs, inputs(), FleetBook())
    kube, events = Recorder(), []
    body = {"metadata": {"name": "chat", "namespace": "team-a"}}
    asyncio.run(apply_decision(kube, body, d, obs, lambda *a: events.append(a)))
    assert ("delete", "Pod", "chat-sp") in kube.calls
    patched = {c[2]: c[3] for c in kube.calls if c[0] == "patch"}
    assert STATE_ANNOTATION in patched["chat"]["metadata"]["annotations"]
    assert patched["chat-od"]["metadata"]["annotations"][DELETION_COST_ANNOTATION] == "0"
    assert "chat-sp" not in patched  # being drained: no point annotating it
    assert events and events[0][1] == "Normal"
    # Same decision again, with the annotations in place: nothing is written.
    body["metadata"]["annotations"] = {STATE_ANNOTATION: d.state.to_json()}
    pods[0]["metadata"]["annotations"] = {DELETION_COST_ANNOTATION: "0"}
    pods[1]["metadata"]["deletionTimestamp"] = "now"
    kube2 = Recorder()
    asyncio.run(apply_decision(kube2, body, d, Observed(nodes=nodes, pods=pods), lambda *a: None))
    assert kube2.calls == []


def test_capped_fixed_deployment_event_names_the_grant_only():
    book = FleetBook()
    nodes = (node("l4", "ON_DEMAND", gpus=1, product="L4"),)
    crit = spec(replicas=1, tier="critical", resources={"gpus": 1, "gpuProduct": "L4"})
    decide(Owner("c", "team-a", "u2"), crit, CONFIG, False, Observed(nodes=nodes), inputs(), book)
    batch = spec(replicas=2, tier="batch", resources={"gpus": 1, "gpuProduct": "L4"})
    d = decide(Owner("b", "team-a", "u1"), batch, CONFIG, False, Observed(nodes=nodes),
               inputs(state=ScalingState(desired=2)), book)
    assert d.desired == 0
    assert d.events == (("Normal", "Scaled", "Scaled team-a/b 2 -> 0: the tier arbiter grants 0 of 2 wanted replica(s)"),)


def test_a_fleet_is_arbitrated_only_when_short_and_then_once_per_change(monkeypatch):
    from halyard_operator.policy import tiers as tier_policy
    from halyard_operator.reconcile import fleet
    from halyard_operator.policy.tiers import Demand

    calls = []
    monkeypatch.setattr(fleet, "arbitrate", lambda *a: calls.append(a) or tier_policy.arbitrate(*a))
    book, tiers = FleetBook(), CONFIG.tiers
    demands = {f"team-a/d{i}": Demand(f"team-a/d{i}", "standard", 1, 1, 1, 1) for i in range(50)}
    for _ in range(3):
        got = {key: book.grant(key, None, d, 40, tiers, now=NOW) for key, d in demands.items()}
    assert len(calls) == 10  # the first 40 fit as they come; each later one changes a short group once
    assert got == tier_policy.arbitrate(tuple(demands.values()), 40, tiers)
    assert sum(g.granted for g in got.values()) == 40
    grown = Demand("team-a/d7", "standard", 1, 1, 3, 1)
    assert book.grant("team-a/d7", None, grown, 90, tiers, now=NOW).granted == 3  # 52 wanted, 90 free
    assert book.grant("team-a/d8", None, demands["team-a/d8"], 90, tiers, now=NOW).granted == 1
    assert len(calls) == 10
    book.forget("team-a/d9")
    assert book.grant("team-a/d8", None, demands["team-a/d8"], 51, tiers, now=NOW).granted == 1  # 51 wanted
    assert len(calls) == 10
    held = book.grant("team-a/d7", None, grown, 40, tiers, now=NOW)
    assert len(calls) == 11 and held.granted < 3 and held.condition.status == "True"
