"""Read what exists for one LLMDeployment from the API server (children, nodes, pods, secrets)."""
from __future__ import annotations

import logging

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.children import workers_service_name
from halyard_operator.builders.meta import Owner, pool_name
from halyard_operator.builders.pools import ON_DEMAND, SPOT
from halyard_operator.builders.router import router_name
from halyard_operator.kube.client import KubeClient, KubeError
from halyard_operator.names import DEPLOYMENT_LABEL
from halyard_operator.observe.read import read_observed
from halyard_operator.observe.types import Observed

log = logging.getLogger(__name__)


def child_keys(owner: Owner) -> list[tuple[str, str]]:
    """Every child a LLMDeployment can have (deterministic names)."""
    router = router_name(owner)
    return [("Deployment", pool_name(owner, ON_DEMAND)), ("Deployment", pool_name(owner, SPOT)),
            ("Service", owner.name), ("Service", workers_service_name(owner)), ("PodDisruptionBudget", owner.name),
            ("ServiceAccount", router), ("Role", router), ("RoleBinding", router), ("Deployment", router),
            ("PodDisruptionBudget", router)]


async def observe_children(kube: KubeClient, owner: Owner) -> dict[tuple[str, str], dict]:
    found = {}
    for kind, name in child_keys(owner):
        live = await kube.get(kind, name, owner.namespace)
        if live is not None:
            found[(kind, name)] = live
    return found


async def observe(kube: KubeClient, owner: Owner, spec: LLMDeploymentSpec, now: float) -> Observed:
    """Children, nodes, worker pods and missing pull secrets; pod ages are taken at `now` (epoch s)."""
    children = await observe_children(kube, owner)
    missing = []
    for ref in spec.template.image_pull_secrets:
        if await kube.get("Secret", ref.name, owner.namespace, metadata_only=True) is None:
            missing.append(ref.name)
    nodes = await _nodes(kube)
    pods = await worker_pods(kube, owner)
    return read_observed(now, children=children, nodes=nodes, pods=pods, missing_secrets=missing)


async def worker_pods(kube: KubeClient, owner: Owner) -> list[dict]:
    """The LLMDeployment's worker pods (the label is checked again: selectors are a server-side nicety)."""
    pods = await kube.list("Pod", owner.namespace, labels=f"{DEPLOYMENT_LABEL}={owner.name}")
    return [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(DEPLOYMENT_LABEL) == owner.name]


async def _nodes(kube: KubeClient) -> list[dict] | None:
    try:
        return await kube.list("Node")
    except KubeError as exc:
        if exc.status in (401, 403):
            log.warning("Cannot list nodes (%s); node placement checks are skipped", exc.status)
            return None
        raise
