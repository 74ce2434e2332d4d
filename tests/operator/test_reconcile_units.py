"""Pure parts of reconcile: write detection, conditions, status, plans."""
from __future__ import annotations

import asyncio

import pytest

from halyard_operator.api import parse_spec
from halyard_operator.builders.meta import Owner
from halyard_operator.config import OperatorConfig, TierConfig
from halyard_operator.api import Condition
from halyard_operator.kube.apply import is_subset, needs_write, with_hash
from halyard_operator.names import HASH_ANNOTATION
from halyard_operator.reconcile.conditions import merge_conditions
from halyard_operator.observe import NodeInfo, Observed
from halyard_operator.kube.client import KubeError
from halyard_operator.reconcile.core import ReconcileContext, _apply
from halyard_operator.reconcile.plan import Plan, make_plan
from halyard_operator.reconcile.status import current_conditions, replica_counts

OWNER = Owner("chat", "team-a", "u-1")
CONFIG = OperatorConfig()
EKS_NODES = ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, {"eks.amazonaws.com/capacityType": "SPOT"})


def nodes(labels):
    return tuple(NodeInfo(f"node-{i}", labels=one) for i, one in enumerate(labels))


def spec(**over):
    return parse_spec({"model": {"name": "m", "uri": "hf://o/r"}, "replicas": 2, **over})


def test_subset_ignores_server_defaults_but_not_changes():
    want = {"spec": {"replicas": 2, "ports": [{"port": 80}]}}
    assert is_subset(want, {"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}})
    assert not is_subset(want, {"spec": {"replicas": 3, "ports": [{"port": 80}]}})
    assert not is_subset(want, {"spec": {"replicas": 2, "ports": []}})


def test_needs_write_on_drift_or_dropped_field():
    desired = with_hash({"kind": "Service", "metadata": {"name": "a"}, "spec": {"a": 1}})
    live = {**desired, "status": {}}
    assert not needs_write(desired, live)
    assert needs_write(desired, {**live, "spec": {"a": 2}})  # someone else changed our field
    dropped = with_hash({"kind": "Service", "metadata": {"name": "a"}, "spec": {}})
    assert needs_write(dropped, live)  # we stopped setting spec.a: hash differs
    assert needs_write(desired, None)
    assert HASH_ANNOTATION in desired["metadata"]["annotations"]


def test_transition_time_moves_only_on_flip():
    first = merge_conditions([], [Condition.of("Ready", False, "ReplicasNotReady", "0/2")], 1, "T1")
    same = merge_conditions(first, [Condition.of("Ready", False, "ReplicasNotReady", "1/2")], 2, "T2")
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["message"] == "1/2"
    flipped = merge_conditions(same, [Condition.of("Ready", True, "ReplicasReady", "2/2")], 2, "T3")
    assert flipped[0]["lastTransitionTime"] == "T3" and flipped[0]["observedGeneration"] == 2


def test_foreign_conditions_are_kept():
    before = [{"type": "ExternalCheck", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "T0"}]
    after = merge_conditions(before, [Condition.of("Ready", True, "ReplicasReady")], 1, "T1")
    assert [c["type"] for c in after] == ["ExternalCheck", "Ready"]


def test_counts_and_ready_condition():
    children = {("Deployment", "chat-ondemand"): {"status": {"replicas": 1, "readyReplicas": 1}},
                ("Deployment", "chat-spot"): {"status": {"replicas": 3, "readyReplicas": 2}}}
    assert replica_counts(children, OWNER) == {"replicas": 4, "readyReplicas": 3,
                                               "onDemandReplicas": 1, "spotReplicas": 3}
    s = spec(replicas=None, scaling={"minReplicas": 3, "maxReplicas": 5})
    conds = {c.type: c for c in current_conditions(s, None, 3, children, OWNER, [])}
    assert conds["Ready"].status == "True" and conds["Ready"].message == "3/3 replicas ready"


def test_plan_writes_children_then_nothing_once_they_exist():
    s = spec(capacity={"spot": {"enabled": True}})
    plan = make_plan(OWNER, s, [], Observed(nodes=nodes(EKS_NODES)), CONFIG)
    assert [o["metadata"]["name"] for o in plan.writes] == [
        "chat-ondemand", "chat-spot", "chat", "chat-workers", "chat"] + ["chat-router"] * 5
    live = {(o["kind"], o["metadata"]["name"]): o for o in plan.writes}
    again = make_plan(OWNER, s, [], Observed(children=live, nodes=nodes(EKS_NODES)), CONFIG)
    assert again.writes == () and again.deletes == () and again.problems == ()


def test_plan_deletes_only_owned_children_of_a_dropped_pool():
    live = {("Deployment", "chat-spot"): {"metadata": {"ownerReferences": [{"uid": "u-1", "controller": True}]}}}
    plan = make_plan(OWNER, spec(), [], Observed(children=live, nodes=nodes(EKS_NODES)), CONFIG)
    assert plan.deletes == (("Deployment", "chat-spot"),)
    foreign = {("Deployment", "chat-spot"): {"metadata": {"ownerReferences": [{"uid": "other", "controller": True}]}}}
    assert make_plan(OWNER, spec(), [], Observed(children=foreign, nodes=nodes(EKS_NODES)), CONFIG).deletes == ()


def test_blocking_problem_means_no_writes():
    config = OperatorConfig(tiers={**CONFIG.tiers, "batch": TierConfig("halyard-batch", spot_allowed=False)})
    plan = make_plan(OWNER, spec(tier="batch", capacity={"spot": {"enabled": True}}), [],
                     Observed(nodes=nodes(EKS_NODES)), config)
    assert plan.writes == () and plan.counts is None
    assert plan.problems[0].reason == "SpotNotAllowedForTier"


def test_spot_without_a_spot_label_is_blocking():
    plan = make_plan(OWNER, spec(capacity={"spot": {"enabled": True}}), [],
                     Observed(nodes=nodes(({"kubernetes.io/os": "linux"},))), CONFIG)
    assert plan.writes == () and plan.problems[0].reason == "SpotUnavailable"


def test_no_matching_node_is_reported_but_not_blocking():
    s = spec(resources={"gpuProduct": "NVIDIA-B200"}, capacity={"provider": "eks"})
    plan = make_plan(OWNER, s, [], Observed(nodes=nodes(EKS_NODES)), CONFIG)
    assert plan.writes and plan.problems[0].reason == "NoMatchingNodes"
    assert "nvidia.com/gpu.product=NVIDIA-B200" in plan.problems[0].message
    karpenter = spec(resources={"gpuProduct": "NVIDIA-B200"}, capacity={"provider": "karpenter"})
    assert make_plan(OWNER, karpenter, [], Observed(nodes=nodes(())), CONFIG).problems == ()


class _BindingsNeedRoles:
    """A client that refuses a RoleBinding whose Role it has not seen (the API
    server's escalation check for an operator without the `bind` verb), and a Service."""

    def __init__(self):
        self.seen: list[str] = []

    async def apply(self, obj):
        kind, name = obj["kind"], obj["metadata"]["name"]
        await asyncio.sleep(0.01 if kind == "Role" else 0)  # the Role is the slowest write
        if kind == "RoleBinding" and f"Role/{name}" not in self.seen:
            raise KubeError(404, "POST", f"rolebindings/{name}", "not found")
        if kind == "Service":
            raise KubeError(500, "PATCH", f"services/{name}", "etcd timeout")
        self.seen.append(f"{kind}/{name}")
        return 200, obj


def test_a_plan_binds_roles_after_creating_them_and_reports_what_it_wrote_when_one_write_fails():
    events = []
    ctx = ReconcileContext(kube=_BindingsNeedRoles(), config=CONFIG, events=lambda *e: events.append(e[-1]))
    body = {"metadata": {"name": "chat", "namespace": "team-a", "uid": "u-1"}}
    writes = tuple({"kind": k, "metadata": {"name": "chat-router", "namespace": "team-a"}}
                   for k in ("RoleBinding", "Role", "Deployment", "Service"))
    with pytest.raises(KubeError, match="etcd timeout"):
        asyncio.run(_apply(ctx, body, Plan(writes=writes), {}, {}))
    assert ctx.kube.seen[-1] == "RoleBinding/chat-router"  # bound after its Role existed
    assert sorted(events) == ["Created Deployment team-a/chat-router", "Created Role team-a/chat-router",
                              "Created RoleBinding team-a/chat-router"]  # the Service failed; the rest is told
