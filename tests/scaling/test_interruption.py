"""Interruption notices on Nodes -> drain decisions and pod-deletion costs."""
from __future__ import annotations

import pytest

from halyard_operator.observe import NodeInfo
from halyard_operator.policy.interruption import (
    COST_INTERRUPTED, PodInfo, detect, plan_interruptions,
)


@pytest.mark.parametrize("key,hard", [
    ("karpenter.sh/disrupted", True),
    ("karpenter.sh/disruption", True),
    ("aws-node-termination-handler/spot-itn", True),
    ("aws-node-termination-handler/asg-lifecycle-termination", True),
    ("aws-node-termination-handler/rebalance-recommendation", False),
    ("aws-node-termination-handler/scheduled-maintenance", False),
    ("cloud.google.com/impending-node-termination", True),
    ("halyard.dev/interruption", True),
])
def test_each_known_taint_is_detected(key, hard):
    notice = detect(NodeInfo("n1", taint_keys=("nvidia.com/gpu", key)))
    assert notice is not None and notice.hard is hard and notice.node == "n1"


def test_generic_annotation_and_plain_nodes():
    assert detect(NodeInfo("n", annotations={"halyard.dev/interruption": "maintenance at 02:00"})).hard
    assert detect(NodeInfo("n", annotations={"halyard.dev/interruption": "false"})) is None
    assert detect(NodeInfo("n", taint_keys=("nvidia.com/gpu",))) is None


def test_hard_notice_drains_now_and_interrupted_pods_go_first():
    nodes = {"spot-1": NodeInfo("spot-1", taint_keys=("aws-node-termination-handler/spot-itn",)),
             "od-1": NodeInfo("od-1")}
    pods = (PodInfo("a", "spot-1", ready=True, load=30), PodInfo("b", "od-1", ready=True, load=12),
            PodInfo("c", "od-1", ready=True, load=3), PodInfo("d", None, ready=False))
    plan = plan_interruptions(nodes, pods, desired=4)
    assert plan.interrupted_pods == ("a",) and plan.drain == ("a",)
    order = sorted(plan.deletion_costs, key=plan.deletion_costs.get)
    assert order == ["a", "d", "c", "b"]  # interrupted, not ready, least loaded, busiest
    assert plan.deletion_costs["a"] == COST_INTERRUPTED
    assert "Draining pod a: node spot-1 has AWS spot interruption notice" in plan.messages


def test_soft_notice_waits_for_the_replacement():
    nodes = {"n1": NodeInfo("n1", taint_keys=("aws-node-termination-handler/rebalance-recommendation",)),
             "n2": NodeInfo("n2")}
    pods = (PodInfo("a", "n1", ready=True), PodInfo("b", "n2", ready=True))
    waiting = plan_interruptions(nodes, pods, desired=2)
    assert waiting.interrupted_pods == ("a",) and waiting.drain == ()
    replaced = plan_interruptions(nodes, pods + (PodInfo("c", "n2", ready=True),), desired=2)
    assert replaced.drain == ("a",)
