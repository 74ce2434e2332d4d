"""Derived node facts are computed once per node tuple and again when it changes."""
from __future__ import annotations

from halyard_operator.memo import per_object
from halyard_operator.observe import NodeInfo
from halyard_operator.reconcile.fleet import usable_gpu_nodes, usable_gpus


def test_a_pure_function_of_the_node_tuple_runs_once_per_tuple_and_argument():
    calls = []

    @per_object
    def gpus(nodes, product):
        calls.append(product)
        return sum(n.gpus for n in nodes if product in (None, n.labels.get("p")))

    nodes = (NodeInfo("a", gpus=2, labels={"p": "L4"}), NodeInfo("b", gpus=4))
    assert [gpus(nodes, None), gpus(nodes, "L4"), gpus(nodes, None), gpus(nodes, "L4")] == [6, 2, 6, 2]
    assert calls == [None, "L4"]
    changed = (NodeInfo("a", gpus=2, labels={"p": "L4"}), NodeInfo("b", gpus=8))
    assert gpus(changed, None) == 10 and calls == [None, "L4", None]


def test_usable_gpus_follow_a_cordon_even_with_equal_looking_calls():
    ready = (NodeInfo("a", gpus=2), NodeInfo("b", gpus=4))
    assert usable_gpus(ready, None) == 6
    cordoned = (NodeInfo("a", gpus=2), NodeInfo("b", gpus=4, schedulable=False))
    assert usable_gpus(cordoned, None) == 2 and dict(usable_gpu_nodes(cordoned, None)) == {"a": 2}
