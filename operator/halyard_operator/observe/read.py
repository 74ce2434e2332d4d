"""Kubernetes API dicts -> typed observations (pure)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

from halyard_operator.builders.pools import ON_DEMAND
from halyard_operator.names import (
    DELETION_COST_ANNOTATION, DEPLOYMENT_LABEL, DRAINING_ANNOTATION, GPU_RESOURCE, POOL_LABEL,
)
from halyard_operator.observe.types import ContainerState, GpuClaim, NodeInfo, Observed, ObservedPod


def _gpus(resources: Mapping | None) -> int:
    try:
        return int(str((resources or {}).get(GPU_RESOURCE, 0)))
    except ValueError:
        return 0


def _ready(status: Mapping) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def read_node(obj: Mapping) -> NodeInfo:
    """A Node object (API dict or kopf body) -> NodeInfo."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return NodeInfo(
        name=meta.get("name", ""),
        taint_keys=tuple(t.get("key", "") for t in spec.get("taints") or []),
        annotations=dict(meta.get("annotations") or {}),
        labels=dict(meta.get("labels") or {}),
        gpus=_gpus((obj.get("status") or {}).get("allocatable")),
        schedulable=not spec.get("unschedulable"),
    )


def read_pod(obj: Mapping, now: float) -> ObservedPod:
    """A worker Pod object -> ObservedPod. `now`: epoch seconds."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    created = meta.get("creationTimestamp")
    born = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() if created else now
    return ObservedPod(
        name=meta.get("name", ""), pool=(meta.get("labels") or {}).get(POOL_LABEL, ON_DEMAND),
        node=(obj.get("spec") or {}).get("nodeName"), ready=_ready(status), age_s=max(0.0, now - born),
        scheduled=status.get("phase", "Pending") != "Pending",
        deleting=meta.get("deletionTimestamp") is not None,
        ip=status.get("podIP") or None,
        deletion_cost=(meta.get("annotations") or {}).get(DELETION_COST_ANNOTATION),
        draining=(meta.get("annotations") or {}).get(DRAINING_ANNOTATION),
        containers=tuple(read_container(c) for c in (*(status.get("initContainerStatuses") or ()),
                                                      *(status.get("containerStatuses") or ()))),
        **_unschedulable(status, now))


def read_container(status: Mapping) -> ContainerState:
    """A containerStatuses[] entry -> ContainerState."""
    waiting = (status.get("state") or {}).get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    return ContainerState(
        name=status.get("name", ""), ready=bool(status.get("ready")), restarts=int(status.get("restartCount") or 0),
        waiting_reason=waiting.get("reason") or "", waiting_message=waiting.get("message") or "",
        last_exit_code=last.get("exitCode"), last_reason=last.get("reason") or "",
        last_message=(last.get("message") or "").strip())


def _unschedulable(status: Mapping, now: float) -> dict:
    """The scheduler's verdict, while it cannot place the pod, and for how long."""
    cond = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
    if not cond or cond.get("status") != "False" or cond.get("reason") != "Unschedulable":
        return {}
    since = cond.get("lastTransitionTime")
    start = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() if since else now
    return {"unschedulable": cond.get("message") or "the scheduler found no node", "unschedulable_s": max(0.0, now - start)}


def read_gpu_claims(pods: Iterable[Mapping]) -> tuple[GpuClaim, ...]:
    """GPUs requested by live, bound pods outside Halyard (any namespace)."""
    claims = []
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if DEPLOYMENT_LABEL in (meta.get("labels") or {}) or not spec.get("nodeName"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = sum(_gpus((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits"))
                   for c in spec.get("containers") or ())
        if gpus:
            claims.append(GpuClaim(spec["nodeName"], gpus))
    return tuple(claims)


def read_observed(now: float, children: Mapping[tuple[str, str], dict] | None = None,
                  nodes: Iterable[Mapping] | None = None, pods: Iterable[Mapping] = (),
                  missing_secrets: Iterable[str] = ()) -> Observed:
    """Everything observed about one LLMDeployment. `nodes=None`: nodes could not be listed."""
    return Observed(children=dict(children or {}),
                    nodes=None if nodes is None else tuple(map(read_node, nodes)),
                    missing_secrets=tuple(missing_secrets),
                    pods=tuple(read_pod(p, now) for p in pods))
