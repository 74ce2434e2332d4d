"""What reconciles derive from the watched node tuple alone, once per tuple (`memo.per_object`)."""
from __future__ import annotations

from typing import Iterable, Mapping

from halyard_operator.memo import per_object
from halyard_operator.observe.types import NodeInfo, Observed


@per_object
def labels_of(nodes: tuple[NodeInfo, ...]) -> tuple[Mapping[str, str], ...]:
    """Every node's labels, once per node tuple."""
    return tuple(n.labels for n in nodes)


def node_labels(observed: Observed) -> tuple[Mapping[str, str], ...] | None:
    """Labels of every node (None when nodes cannot be listed), the same tuple while
    the node tuple stays the same."""
    return None if observed.nodes is None else labels_of(observed.nodes)


@per_object
def by_name(nodes: Iterable[NodeInfo]) -> Mapping[str, NodeInfo]:
    """Node name -> NodeInfo, once per node tuple (shared: do not mutate)."""
    return {info.name: info for info in nodes}
