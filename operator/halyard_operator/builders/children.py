"""Desired child objects of one LLMDeployment (pure): a Deployment per pool,
the Service `<name>` (the router, or the workers when the router is off), the
headless Service `<name>-workers`, a PodDisruptionBudget and the router's children."""
from __future__ import annotations

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.args import PORT
from halyard_operator.builders.meta import Owner, child_metadata, pool_name, selector_labels
from halyard_operator.builders.placement import PoolCounts
from halyard_operator.builders.pod import pod_template
from halyard_operator.builders.pools import ON_DEMAND, SPOT, Pools
from halyard_operator.builders.router import router_children, router_selector
from halyard_operator.names import POOL_LABEL
from halyard_operator.config import OperatorConfig, PoolPreset


def deployment(owner: Owner, spec: LLMDeploymentSpec, pool: str, replicas: int,
               preset: PoolPreset, config: OperatorConfig) -> dict:
    """apps/v1 Deployment `<name>-<pool>` running `replicas` workers."""
    selector = {**selector_labels(owner), POOL_LABEL: pool}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": child_metadata(owner, pool_name(owner, pool), {POOL_LABEL: pool}),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            # Surge one pod, never drop below the serving size during a rollout.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod_template(owner, spec, pool, preset, config),
        },
    }


def service(owner: Owner, spec: LLMDeploymentSpec) -> dict:
    """v1 Service `<name>`, the OpenAI endpoint (port name http): the router
    pods, or the workers of every pool when the router is off."""
    selector = router_selector(owner) if spec.router.enabled else selector_labels(owner)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": child_metadata(owner, owner.name),
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def workers_service_name(owner: Owner) -> str:
    return f"{owner.name}-workers"


def workers_service(owner: Owner) -> dict:
    """Headless v1 Service `<name>-workers`: one DNS record per worker pod, Ready
    or not (the router and gateways pick pods themselves)."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": child_metadata(owner, workers_service_name(owner)),
        "spec": {"clusterIP": "None", "selector": selector_labels(owner), "publishNotReadyAddresses": True,
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def disruption_budget(owner: Owner) -> dict:
    """policy/v1 PodDisruptionBudget `<name>`: voluntary evictions (node
    drains) take at most one worker at a time."""
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": child_metadata(owner, owner.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(owner)}},
    }


def desired_children(owner: Owner, spec: LLMDeploymentSpec, pools: Pools, counts: PoolCounts,
                     config: OperatorConfig) -> list[dict]:
    """Every child the LLMDeployment should have right now, in apply order."""
    children = [deployment(owner, spec, ON_DEMAND, counts.on_demand, pools.on_demand, config)]
    if pools.spot is not None:
        children.append(deployment(owner, spec, SPOT, counts.spot, pools.spot, config))
    return children + [service(owner, spec), workers_service(owner), disruption_budget(owner),
                       *router_children(owner, spec, config)]
