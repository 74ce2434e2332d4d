"""Watcher piece: Kubernetes Node objects -> interruption notices for the policy.

`node_info(obj)` turns a Node (dict as returned by the API or a kopf body)
into the policy's NodeInfo; `interrupted(nodes)` lists the nodes with a notice.
A kopf `@kopf.on.event('nodes')` handler can call these and trigger the
reconcile of the LLMDeployments whose pods run on an interrupted node.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from halyard_operator.policy.interruption import Interruption, NodeInfo, detect


def node_info(obj: Mapping) -> NodeInfo:
    meta = obj.get("metadata") or {}
    taints = (obj.get("spec") or {}).get("taints") or []
    return NodeInfo(
        name=meta.get("name", ""),
        taint_keys=tuple(t.get("key", "") for t in taints),
        annotations=dict(meta.get("annotations") or {}),
    )


def interrupted(nodes: Iterable[Mapping]) -> dict[str, Interruption]:
    """Node name -> its interruption notice, for every Node that has one."""
    out = {}
    for obj in nodes:
        info = node_info(obj)
        notice = detect(info)
        if notice:
            out[info.name] = notice
    return out
